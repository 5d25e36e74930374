import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeRemoteContract } from "@sheepdog/contracts/testing";
import { afterAll, describe, expect, it } from "vitest";
import { localRemote } from "./index.js";

const home = mkdtempSync(join(tmpdir(), "sheepdog-local-remote-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

describeRemoteContract("local", () => localRemote({ home }));

describe("localRemote", () => {
  it("runs commands in its home directory", async () => {
    await using remote = localRemote({ home });
    expect((await remote.exec("pwd")).stdout.trim()).toBe(home);
    expect(remote.name).toBe("local");
  });

  it("kills the whole process group of a stopped command", async () => {
    await using remote = localRemote({ home });
    const marker = join(home, "group-marker");
    // The background child would outlive its shell if only the shell were killed.
    const running = remote.exec(`(sleep 1; echo late > ${marker}) & wait`, { timeoutMs: 200 });
    await expect(running).rejects.toMatchObject({ code: "TIMEOUT" });
    await new Promise((resolve) => setTimeout(resolve, 1400));
    expect((await remote.exec(`test -e ${marker} && echo exists || echo absent`)).stdout).toBe(
      "absent\n",
    );
  });

  it("refuses a bad home", () => {
    expect(() => localRemote({ home: "" })).toThrow(/home must be a directory path/);
  });
});
