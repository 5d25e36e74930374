import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { memoryStore } from "@sheepdog/contracts/testing";
import { localRemote } from "@sheepdog/local";
import { sqliteStore } from "@sheepdog/store-sqlite";
import { unusedPort } from "@sheepdog/testcluster";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { undecodableAtOne } from "./__fixtures__/functions.js";
import { processScheduler } from "./__fixtures__/process-scheduler.js";
import type { MapProgress, SheepdogConfig } from "./index.js";
import {
  createSheepdog,
  getErrors,
  getResults,
  map,
  py,
  requestStatus,
  shutdown,
} from "./index.js";

/** Runs a map, keeping its progress; resolves with its results and request id. */
async function mapWithProgress(...call: Parameters<typeof map>) {
  const [f, args, config, options = {}] = call;
  const progress: MapProgress[] = [];
  const results = await map(f, args, config, {
    ...options,
    onProgress: (p) => {
      progress.push(p);
      options.onProgress?.(p);
    },
  });
  return { results, progress, request: progress.at(-1)?.request ?? 0 };
}

/** Whether a process runs (a zombie, ended but not yet reaped by init, does not). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

describe("faults on the local scheduler", () => {
  let dir: string;
  let config: SheepdogConfig;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "sheepdog-core-faults-"));
    config = { host: "local", dbfile: join(dir, "sheepdog.sqlite"), concurrency: 4 };
  });
  afterAll(async () => {
    await shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A function that records each call of each argument in `dir`, then runs `body`. */
  function counting(body: string) {
    return py`
def f(x, marker):
    import os
    with open(marker + "." + str(x), "a") as calls:
        calls.write("call\n")
    attempt = sum(1 for _ in open(marker + "." + str(x)))
${body}
`;
  }
  const callsOf = (marker: string, x: number) =>
    existsSync(`${marker}.${x}`)
      ? readFileSync(`${marker}.${x}`, "utf8").split("\n").length - 1
      : 0;

  it("retries a task that died, as a new job of only its arguments", async () => {
    const marker = join(dir, "died");
    const f = counting(`
    if x == 2 and attempt == 1:
        os.kill(os.getpid(), 9)
    return x * 10
`);
    const { results, progress, request } = await mapWithProgress(
      f,
      [0, 1, 2, 3].map((x) => [x, marker]),
      { ...config, retries: 2, chunkSize: 1 },
    );
    expect(results).toEqual([0, 10, 20, 30]);
    expect([0, 1, 2, 3].map((x) => callsOf(marker, x))).toEqual([1, 1, 2, 1]);
    expect(Math.max(...progress.map((p) => p.attempt))).toBe(2);
    expect(await getErrors(request, { dbfile: config.dbfile })).toEqual([]);
    // The retry job ran one task: the request's task 5, covering argument 2 alone.
    const status = await requestStatus(request, { dbfile: config.dbfile });
    expect(status.job?.tasks).toBe(1);
    const store = sqliteStore({ dbfile: config.dbfile as string });
    try {
      expect((await store.getRequest(request)).meta).toMatchObject({
        retryTasks: [[2]],
        taskOffset: 4,
        attempt: 2,
      });
    } finally {
      await store.close();
    }
  });

  it("retries a MemoryError with more memory from retryWith", async () => {
    // The local scheduler ignores scheduler options; this one reads a memory limit from them.
    await using sheepdog = createSheepdog({
      store: memoryStore(),
      cluster: { scheduler: processScheduler(), remote: localRemote() },
      retries: 1,
      geOpts: [`--mem=${150 * 1024 ** 2}`],
    });
    const f = py`
def f(mib):
    block = bytearray(mib * 1024 * 1024)
    return len(block) // (1024 * 1024)
`;
    const seen: [number, string[]][] = [];
    const results = await sheepdog.map(f, [[10], [300]], {
      retryWith: (attempt, previous) => {
        seen.push([attempt, previous.geOpts]);
        return { geOpts: [`--mem=${150 * 4 * (attempt - 1) * 1024 ** 2}`] };
      },
    });
    expect(results).toEqual([10, 300]);
    expect(seen).toEqual([[2, [`--mem=${150 * 1024 ** 2}`]]]);
  });

  it("tells retryWith why each argument failed, and stops when it returns false", async () => {
    const marker = join(dir, "kinds");
    const f = counting(`
    if x == 1:
        os.kill(os.getpid(), 9)
    if x == 2:
        raise MemoryError()
    return x
`);
    const told: unknown[] = [];
    const { results } = await mapWithProgress(
      f,
      [0, 1, 2].map((x) => [x, marker]),
      { ...config, retries: 3, chunkSize: 1 },
      {
        retryWith: (attempt, _previous, failures) => {
          told.push({ attempt, ...failures });
          return attempt < 3 ? undefined : false;
        },
      },
    );
    expect(results).toEqual([0, null, null]);
    const firstTold = {
      failed: [
        { index: 1, kind: "signal" },
        { index: 2, kind: "out-of-memory" },
      ],
    };
    expect(told).toEqual([
      { attempt: 2, ...firstTold, kinds: { signal: 1, "out-of-memory": 1 } },
      { attempt: 3, ...firstTold, kinds: { signal: 1, "out-of-memory": 1 } },
    ]);
    // Attempt 3 was refused: each argument ran twice, not four times.
    expect([0, 1, 2].map((x) => callsOf(marker, x))).toEqual([1, 2, 2]);
  });

  it("leaves exceptions the function raised alone unless retryOn is any", async () => {
    const marker = join(dir, "raised");
    const f = counting(`
    if attempt < 3:
        raise ValueError("attempt %d of x=%d" % (attempt, x))
    return x
`);
    const once = await mapWithProgress(f, [[1, marker]], { ...config, retries: 3 });
    expect(once.results).toEqual([null]);
    expect(callsOf(marker, 1)).toBe(1);
    const [[, firstError] = []] = await getErrors(once.request, { dbfile: config.dbfile });
    expect(firstError).toMatch(/^Traceback/);

    const any = await mapWithProgress(f, [[2, marker]], { ...config, retries: 3, retryOn: "any" });
    expect(any.results).toEqual([2]);
    expect(callsOf(marker, 2)).toBe(3);

    // Out of retries: the error lists each attempt's cause, in order.
    const out = await mapWithProgress(f, [[3, marker]], { ...config, retries: 1, retryOn: "any" });
    expect(out.results).toEqual([null]);
    const [[args, error] = []] = await getErrors(out.request, { dbfile: config.dbfile });
    expect(args).toEqual([3, marker]);
    expect(error).toMatch(
      /^Failed on each of 2 attempts\.\n\nAttempt 1 of 2: Traceback[\s\S]*ValueError: attempt 1 of x=3\n\nAttempt 2 of 2: Traceback[\s\S]*ValueError: attempt 2 of x=3\n$/,
    );
  });

  it("makes a result that does not decode an error of its task alone", async () => {
    const f = undecodableAtOne(240, 1);
    const { results, request, progress } = await mapWithProgress(f, [[0], [1], [2]], {
      ...config,
      chunkSize: 3,
    });
    expect(results).toEqual([0, null, 2]);
    expect(progress.at(-1)).toMatchObject({ results: 2, errors: 1 });
    const rows = await getResults(request, { dbfile: config.dbfile });
    expect(rows).toEqual([
      [[0], 0],
      [[1], null],
      [[2], 2],
    ]);
    const errors = await getErrors(request, { dbfile: config.dbfile });
    expect(errors).toHaveLength(1);
    expect(errors[0]?.[0]).toEqual([1]);
    expect(errors[0]?.[1]).toContain("a result that Sheepdog cannot decode");
    expect(errors[0]?.[1]).toContain("copyreg extension registry");
  });

  it("reads an undecodable result already in the store as null, and writes nothing", async () => {
    const { request } = await mapWithProgress(
      py`
def f(x):
    return x
`,
      [[5], [6]],
      config,
    );
    // A result stored by a server that did not check it: valid framing, garbage inside.
    const store = sqliteStore({ dbfile: config.dbfile as string });
    try {
      await store.resetTasks(request, [1]);
      await store.putResult(request, 1, new Uint8Array([0x80, 4, 0xff, 0x2e]));
    } finally {
      await store.close();
    }
    for (let read = 0; read < 2; read++) {
      expect(await getResults(request, { dbfile: config.dbfile })).toEqual([
        [[5], 5],
        [[6], null],
      ]);
    }
    // getResults only reads: the stored result stays a result, and no error was written.
    expect(await getErrors(request, { dbfile: config.dbfile })).toEqual([]);
    expect((await requestStatus(request, { dbfile: config.dbfile })).results).toBe(2);
  });

  it("Ctrl-C during map cancels the job, closes the server, then ends the program by SIGINT", async () => {
    const pids = join(dir, "pids");
    const port = await unusedPort();
    const script = join(dir, "interrupted.mjs");
    writeFileSync(
      script,
      `import { map, py } from ${JSON.stringify(pathToFileURL(join(import.meta.dirname, "../dist/index.js")).href)};
const f = py\`
def f(x, pids):
    import os, time
    with open(pids, "a") as out:
        out.write("%d\\n" % os.getpid())
    time.sleep(60)
    return x
\`;
await map(f, [[1, ${JSON.stringify(pids)}], [2, ${JSON.stringify(pids)}]], JSON.parse(process.argv[2]), {
  onProgress: (p) => { if (p.running === 2) console.log("running"); },
});
console.log("not interrupted");
`,
    );
    const child = spawn(process.execPath, [
      script,
      JSON.stringify({ ...config, port, chunkSize: 1 }),
    ]);
    let stdout = "";
    let stderr = "";
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    const ended = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.on("exit", (code, signal) => resolve({ code, signal })),
    );
    await new Promise<void>((resolve) =>
      child.stdout.on("data", (chunk) => {
        stdout += chunk;
        if (stdout.includes("running")) resolve();
      }),
    );
    // Both tasks are running: each writes its pid once its Python has started the call.
    const pidsWritten = () =>
      existsSync(pids) ? readFileSync(pids, "utf8").trim().split("\n").filter(Boolean) : [];
    for (let waited = 0; waited < 10_000 && pidsWritten().length < 2; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const taskPids = pidsWritten().map(Number);
    expect(taskPids).toHaveLength(2);
    child.kill("SIGINT");
    expect(await ended, stderr).toEqual({ code: null, signal: "SIGINT" });
    expect(stdout).not.toContain("not interrupted");
    // The job's tasks were stopped (not orphaned), and nothing listens on the port any more.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(taskPids.filter(running)).toEqual([]);
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
  });

  it("refuses bad retry settings", async () => {
    const f = py`
def f(x):
    raise MemoryError()
`;
    await expect(
      map(
        f,
        [[1]],
        { ...config, retries: 1 },
        { retryWith: () => ({ geOpts: ["-l a=1\n#$ -N x"] }) },
      ),
    ).rejects.toMatchObject({ code: "CONFIG_INVALID" });
    await expect(map(f, [[1]], { ...config, retries: 1.5 })).rejects.toThrow(
      '"retries" must be a whole number',
    );
  });
});
