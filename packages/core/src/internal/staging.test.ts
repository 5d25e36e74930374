import { SheepdogError } from "@sheepdog/contracts";
import { describe, expect, it } from "vitest";
import { stagedOf, stagedPathsOf } from "./staging.js";

const name = "sheepdog_7_0123abcd";

/** A detached request's meta as submission writes it. */
function metaOf(staged: unknown, jobName = name): Record<string, unknown> {
  return { job: { name: jobName }, staged };
}

function refusal(meta: Record<string, unknown>, id = 7): unknown {
  try {
    stagedOf(meta, id);
  } catch (error) {
    return error;
  }
  return undefined;
}

describe("stagedOf", () => {
  it("gives the paths submission wrote, and nothing for a request that is not detached", () => {
    for (const sshDir of [".sheepdog", "/home/me/.sheepdog/", "jobs/here"]) {
      const paths = stagedPathsOf(sshDir, name);
      expect(stagedOf(metaOf(paths), 7)).toEqual(paths);
    }
    expect(stagedOf({ job: { name } }, 7)).toBeUndefined();
  });

  it("refuses paths a results file was edited to hold, naming the request", () => {
    const good = stagedPathsOf(".sheepdog", name);
    const edited = [
      metaOf({ dir: "/etc", spoolDir: "/etc/spool" }),
      metaOf({
        dir: ".sheepdog/../../x/sheepdog_7_0123abcd.d",
        spoolDir: ".sheepdog/../../x/sheepdog_7_0123abcd.d/spool",
      }),
      metaOf({ dir: good.dir, spoolDir: "/tmp/spool" }),
      metaOf(
        {
          dir: ".sheepdog/sheepdog_8_0123abcd.d",
          spoolDir: ".sheepdog/sheepdog_8_0123abcd.d/spool",
        },
        "sheepdog_8_0123abcd",
      ),
      metaOf({ dir: `.sheepdog\n/${name}.d`, spoolDir: `.sheepdog\n/${name}.d/spool` }),
      metaOf({ dir: `.sheepdog//${name}.d`, spoolDir: `.sheepdog//${name}.d/spool` }),
      metaOf(good, "sheepdog_7_$(id)"),
      metaOf({ dir: 42, spoolDir: "x" }),
      metaOf("a string"),
    ];
    for (const meta of edited) {
      const error = refusal(meta);
      expect(SheepdogError.isInstance(error) && error.code).toBe("STORE_CORRUPT");
      expect((error as Error).message).toContain("Request 7's record of its staged files");
    }
  });
});
