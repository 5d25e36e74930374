import { spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JobRef, JobSpec, Scheduler, Store } from "@sheepdog/contracts";
import { encodeTaskFrames, SheepdogError } from "@sheepdog/contracts";
import { memoryStore } from "@sheepdog/contracts/testing";
import { localRemote } from "@sheepdog/local";
import { canSwitchUsers } from "@sheepdog/testcluster";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { processScheduler } from "./__fixtures__/process-scheduler.js";
import type { Sheepdog } from "./index.js";
import { createSheepdog, py } from "./index.js";
import type { Submitted } from "./internal/submit.js";
import { maxReplyBytes } from "./internal/submit.js";

/**
 * Issue 19: a job's program is copied by schedulers where every user of a node can read it
 * (GridEngine's execd spool, mode 0755), so it holds no secret. The request's token waits in
 * a file of the user's own (0600, in a 0700 job directory) for the workers of every attempt,
 * and `map` removes it when it ends; `mapAsync` leaves it for its queued tasks.
 */

/** What a task sees of its token file and job directory: their modes, and the token. */
const inspect = py<[string], [string, string, string]>`
def f(directory):
    import os, stat
    (name,) = [n for n in os.listdir(directory) if n.endswith(".token")]
    path = os.path.join(directory, name)
    with open(path) as handle:
        token = handle.read().strip()
    mode = lambda p: oct(stat.S_IMODE(os.stat(p).st_mode))
    return [mode(directory), mode(path), token]
`;

let dir: string;
let store: Store;
let programs: JobSpec[];
let jobRefs: JobRef[];
let scheduler: Scheduler;
const opened: Sheepdog[] = [];

/** A Sheepdog on the memory store whose job directory is `jobs` (under the test's dir). */
function sheepdogWith(jobs: string): Sheepdog {
  const sheepdog = createSheepdog({
    store,
    cluster: { scheduler, remote: localRemote() },
    sshDir: join(dir, jobs),
  });
  opened.push(sheepdog);
  return sheepdog;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sheepdog-token-file-"));
  store = memoryStore();
  const inner = processScheduler();
  programs = [];
  jobRefs = [];
  // The test's scheduler, recording each job's spec (its program above all).
  scheduler = {
    ...inner,
    async submit(spec) {
      programs.push(spec);
      const job = await inner.submit(spec);
      jobRefs.push(job);
      return job;
    },
  };
});

afterEach(async () => {
  for (const sheepdog of opened.splice(0)) await sheepdog.close();
});

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the request's token on the cluster", () => {
  it("is not in the job's program; it waits in a 0600 file of a 0700 directory, removed when map ends", async () => {
    const jobs = join(dir, "jobs");
    const [[directoryMode, fileMode, token]] = (await sheepdogWith("jobs").map(inspect, [
      [jobs],
    ])) as [[string, string, string]];
    expect([directoryMode, fileMode]).toEqual(["0o700", "0o600"]);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const spec = programs.at(-1) as JobSpec;
    expect(spec.program).not.toContain(token);
    expect(spec.program).toContain(`"tokenFile\\":\\"${jobs}/${spec.name}.token\\"`);
    expect(readdirSync(jobs).filter((name) => name.endsWith(".token"))).toEqual([]);
  });

  it("stays after mapAsync, for tasks that may wait in the queue longer than this process", async () => {
    const sheepdog = sheepdogWith("async");
    const id = await sheepdog.mapAsync(inspect, [[join(dir, "async")]]);
    const [[, result]] = (await sheepdog.getResults(id, { block: true })) as [[unknown, string[]]];
    expect(result?.[1]).toBe("0o600");
    const spec = programs.at(-1) as JobSpec;
    expect(existsSync(join(dir, "async", `${spec.name}.token`))).toBe(true);
  });

  it("stays for a job a map leaves running when aborted (keepJob), and goes with one it cancels", async () => {
    const slow = py<[number], number>`
def f(x):
    import time
    time.sleep(x)
    return x
`;
    for (const keepJob of [true, false]) {
      const directory = `aborted-${keepJob}`;
      const controller = new AbortController();
      const error = await sheepdogWith(directory)
        .map(slow, [[30]], {
          signal: controller.signal,
          keepJob,
          onProgress: () => controller.abort(),
        })
        .catch((e: unknown) => e);
      expect(SheepdogError.isInstance(error) && error.code).toBe("ABORTED");
      const tokens = readdirSync(join(dir, directory)).filter((name) => name.endsWith(".token"));
      expect(tokens).toHaveLength(keepJob ? 1 : 0);
      if (keepJob) await scheduler.cancel(jobRefs.at(-1) as JobRef);
    }
  });

  it("is never written into a job directory that others can read or write: the map is refused", async () => {
    for (const mode of [0o755, 0o750, 0o703, 0o701]) {
      const jobs = join(dir, `shared-${mode.toString(8)}`);
      mkdirSync(jobs, { mode });
      chmodSync(jobs, mode);
      const submitted = programs.length;
      const error = await sheepdogWith(`shared-${mode.toString(8)}`)
        .map(inspect, [[jobs]])
        .catch((e: unknown) => e);
      expect(SheepdogError.isInstance(error) && error.code).toBe("CONFIG_INVALID");
      expect((error as SheepdogError).message).toMatch(
        new RegExp(
          `^\\[sheepdog\\] \\[core\\] The job directory ${jobs} on local is not yours alone \\(mode d[rwx-]{9}\\), and it would hold this map's token\\. Run "chmod 700 ${jobs}" on local if it is yours, or set sshDir to a directory only you can use\\.$`,
        ),
      );
      // Refused, not changed: the directory is the user's to fix; nothing was submitted.
      expect(statSync(jobs).mode & 0o777).toBe(mode);
      expect(readdirSync(jobs)).toEqual([]);
      expect(programs.length).toBe(submitted);
    }
  });

  it.skipIf(!canSwitchUsers)(
    "is never written into a job directory of another user, which nobody can then read (root only: switching users needs root)",
    async () => {
      const jobs = join(dir, "nobodys");
      mkdirSync(jobs, { mode: 0o700 });
      chownSync(jobs, 65534, 65534);
      const error = await sheepdogWith("nobodys")
        .map(inspect, [[jobs]])
        .catch((e: unknown) => e);
      expect(SheepdogError.isInstance(error) && error.code).toBe("CONFIG_INVALID");
      expect((error as Error).message).toContain(`is not yours alone (owned by user 65534)`);
      // And a token file in the user's own directory is closed to nobody.
      const mine = sheepdogWith("mine");
      const id = await mine.mapAsync(inspect, [[join(dir, "mine")]]);
      await mine.getResults(id, { block: true });
      const [file] = readdirSync(join(dir, "mine")).filter((name) => name.endsWith(".token"));
      const cat = spawnSync(
        "runuser",
        ["-u", "nobody", "--", "cat", join(dir, "mine", file ?? "")],
        {
          encoding: "utf8",
        },
      );
      expect(cat.status).not.toBe(0);
      expect(cat.stderr).toContain("Permission denied");
    },
  );
});

describe("maxReplyBytes", () => {
  const submitted = (tasks: number, chunkSize: number, args: number[]) =>
    ({
      tasks,
      chunkSize,
      sizes: {
        func: 300,
        ns: 40,
        largestArgs: Math.max(...args),
        totalArgs: args.reduce((a, b) => a + b, 0),
      },
    }) as unknown as Submitted;

  it("is at least what the server sends for the largest task of each attempt, and not much more", () => {
    const bytes = (n: number) => new Uint8Array(n);
    const args = [10, 5000, 20, 7, 64, 900, 3];
    const first = submitted(7, 3, args);
    // The first attempt: chunks of 3 from the start; the largest chunk holds 5000 and 20 and 10.
    const chunk = encodeTaskFrames({
      header: { version: 2, request: 999_999_999, task: 999_999, first: 0, count: 3 },
      func: bytes(300),
      ns: bytes(40),
      args: [bytes(10), bytes(5000), bytes(20)],
    });
    const bound = maxReplyBytes(first, { taskOffset: 0 });
    expect(bound).toBeGreaterThanOrEqual(chunk.byteLength);
    expect(bound).toBeLessThan(chunk.byteLength + 2048);
    // A retry task: any of the arguments, listed by index, in a header that grows with them.
    const retry = encodeTaskFrames({
      header: {
        version: 2,
        request: 999_999_999,
        task: 999_999,
        first: 0,
        count: 7,
        indices: [0, 1, 2, 3, 4, 5, 6],
      },
      func: bytes(300),
      ns: bytes(40),
      args: args.map(bytes),
    });
    expect(maxReplyBytes(first, { taskOffset: 3 })).toBeGreaterThanOrEqual(retry.byteLength);
    const many = submitted(
      100_000,
      1,
      Array.from({ length: 100_000 }, () => 1),
    );
    const wide = encodeTaskFrames({
      header: {
        version: 2,
        request: 999_999_999_999,
        task: 999_999_999,
        first: 0,
        count: 100_000,
        indices: Array.from({ length: 100_000 }, (_, i) => 9_000_000_000_000 + i),
      },
      func: bytes(300),
      ns: bytes(40),
      args: Array.from({ length: 100_000 }, () => bytes(1)),
    });
    expect(maxReplyBytes(many, { taskOffset: 1 })).toBeGreaterThanOrEqual(wide.byteLength);
  });
});
