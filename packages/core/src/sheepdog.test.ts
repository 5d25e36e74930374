import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import type { NewRequest, Scheduler, Store } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import { memoryStore } from "@sheepdog/contracts/testing";
import { localRemote } from "@sheepdog/local";
import { sqliteStore } from "@sheepdog/store-sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { processScheduler } from "./__fixtures__/process-scheduler.js";
import type { Sheepdog } from "./index.js";
import { createSheepdog, py, TasksFailedError } from "./index.js";

const run = promisify(execFile);
const resolveFrom = createRequire(import.meta.url);
/** Absolute URLs of what a child program imports: the built packages. */
const urls = {
  core: pathToFileURL(join(import.meta.dirname, "../dist/index.js")).href,
  testing: pathToFileURL(resolveFrom.resolve("@sheepdog/contracts/testing")).href,
  local: pathToFileURL(resolveFrom.resolve("@sheepdog/local")).href,
};

const double = py<[number], number>`
def f(x):
    return x * 2
`;

/** Runs an ES module as a new Node process; resolves with what it printed as JSON. */
async function runProgram(dir: string, name: string, source: string): Promise<unknown> {
  const path = join(dir, name);
  writeFileSync(path, source);
  const { stdout } = await run(process.execPath, [path], { cwd: dir, timeout: 60_000 });
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "null");
}

/** Which native or heavy packages a program loaded, judged from its module cache. */
const loadedPackages = `
import { createRequire } from "node:module";
function loaded() {
  const paths = Object.keys(createRequire(import.meta.url).cache);
  return {
    betterSqlite3: paths.some((p) => p.includes("/better-sqlite3/")),
    ssh2: paths.some((p) => p.includes("/ssh2/")),
  };
}
`;

describe("createSheepdog: backends passed as values", () => {
  let dir: string;
  let store: Store;
  let scheduler: ReturnType<typeof processScheduler>;
  let sheepdog: Sheepdog;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "sheepdog-compose-"));
    store = memoryStore();
    scheduler = processScheduler();
    sheepdog = createSheepdog({ store, cluster: { scheduler, remote: localRemote() } });
  });
  afterAll(async () => {
    await sheepdog.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs a whole map on a scheduler written in the test, with the memory store", async () => {
    expect(await sheepdog.map(double, [[1], [2], [3]])).toEqual([2, 4, 6]);
    const [request] = await store.listRequests();
    expect(request).toMatchObject({ tasks: 3, results: 3, errors: 0 });
    expect(scheduler.log.submitted.at(-1)?.tasks).toBeGreaterThanOrEqual(1);
  });

  it("asks the slots while the arguments are stored, and puts the chunk size in the meta before submitting", async () => {
    const newest = async () => Math.max(0, ...(await store.listRequests()).map((r) => r.id));
    const before = await newest();
    let storedBeforeSlots = false;
    const metaAtSubmit: Record<string, unknown>[] = [];
    const slotsAfterStoring: Scheduler = {
      ...scheduler,
      // Two slots, told once the request is stored: a map that waited for the slots before
      // storing would be told only after five seconds.
      async slots() {
        for (let waited = 0; waited < 5000 && !storedBeforeSlots; waited += 20) {
          storedBeforeSlots = (await newest()) > before;
          if (!storedBeforeSlots) await new Promise((resolve) => setTimeout(resolve, 20));
        }
        return 2;
      },
      async submit(spec) {
        metaAtSubmit.push((await store.getRequest(await newest())).meta);
        return scheduler.submit(spec);
      },
    };
    const sized = createSheepdog({
      store,
      cluster: { scheduler: slotsAfterStoring, remote: localRemote() },
    });
    const args = Array.from({ length: 12 }, (_, x) => [x] as [number]);
    expect(await sized.map(double, args)).toEqual(args.map(([x]) => x * 2));
    expect(storedBeforeSlots).toBe(true);
    // Two tasks per slot: chunks of 3, and as there are several, the tasks may claim.
    expect(metaAtSubmit).toEqual([expect.objectContaining({ chunkSize: 3, claims: {} })]);
    await sized.close();
  });

  it("checks the scheduler's options before anything is submitted", async () => {
    const refusing = createSheepdog({
      store,
      cluster: { scheduler, remote: localRemote() },
      geOpts: ["--refused"],
    });
    const requests = (await store.listRequests()).length;
    const submitted = scheduler.log.submitted.length;
    const error = await refusing.map(double, [[1]]).catch((e: unknown) => e);
    expect(SheepdogError.isInstance(error) && error.code).toBe("CONFIG_INVALID");
    expect((error as Error).message).toContain('"--refused" is refused');
    expect(scheduler.log.submitted.length).toBe(submitted);
    expect((await store.listRequests()).length).toBe(requests);
    await refusing.close();
  });

  it("marks a request whose job the scheduler refused as failed, and removes its token file", async () => {
    const sshDir = mkdtempSync(join(tmpdir(), "sheepdog-refused-"));
    let tokensAtSubmit: string[] = [];
    const refusing: Scheduler = {
      ...scheduler,
      async submit() {
        tokensAtSubmit = readdirSync(sshDir).filter((file) => file.endsWith(".token"));
        throw new SheepdogError("SUBMIT_FAILED", "test", "The queue is closed.");
      },
    };
    const refused = createSheepdog({
      store,
      cluster: { scheduler: refusing, remote: localRemote() },
      sshDir,
    });
    const before = (await store.listRequests()).length;
    const error = await refused.map(double, [[1], [2]]).catch((e: unknown) => e);
    expect(SheepdogError.isInstance(error) && error.code).toBe("SUBMIT_FAILED");
    const added = (await store.listRequests()).slice(before);
    expect(added).toHaveLength(1);
    expect(added[0]?.meta.cancelled).toEqual({ at: expect.any(Number), reason: "failed" });
    expect(added[0]?.meta).not.toHaveProperty("job");
    expect(tokensAtSubmit).toHaveLength(1);
    expect(readdirSync(sshDir)).toEqual([]);
    await refused.close();
    rmSync(sshDir, { recursive: true, force: true });
  });

  it("cancels a job whose request could not be told of it, and marks the request failed", async () => {
    const forgetful: Store = Object.create(store, {
      updateMeta: {
        value: async (request: number, patch: Record<string, unknown>) => {
          if ("job" in patch) throw new Error("disk I/O error");
          return store.updateMeta(request, patch);
        },
      },
    });
    const failing = createSheepdog({
      store: forgetful,
      cluster: { scheduler, remote: localRemote() },
    });
    const before = (await store.listRequests()).length;
    const submitted = scheduler.log.submitted.length;
    const error = await failing.map(double, [[1], [2]]).catch((e: unknown) => e);
    expect((error as Error).message).toContain("disk I/O error");
    expect(scheduler.log.submitted.length).toBe(submitted + 1);
    expect(scheduler.log.cancelled).toContain(String(scheduler.log.submitted.length));
    const added = (await store.listRequests()).slice(before);
    expect(added).toHaveLength(1);
    expect(added[0]?.meta.cancelled).toEqual({ at: expect.any(Number), reason: "failed" });
    await failing.close();
  });

  it("takes the results in as the store writes them, reading back only those it did not see", async () => {
    const reads: [number, number][] = [];
    const counting: Store = Object.create(store, {
      getResultRange: {
        value: async (request: number, start: number, count: number) => {
          reads.push([start, count]);
          return store.getResultRange?.(request, start, count);
        },
      },
    });
    const watched = createSheepdog({
      store: counting,
      cluster: { scheduler, remote: localRemote() },
    });
    const args = Array.from({ length: 20 }, (_, x) => [x] as [number]);
    expect(await watched.map(double, args)).toEqual(args.map(([x]) => x * 2));
    const { results } = await watched.mapSettled(double, [[1], [null as unknown as number]]);
    expect(results[0]).toEqual({ ok: true, value: 2 });
    expect(results[1]).toMatchObject({ ok: false, error: expect.stringContaining("TypeError") });
    // Only the failed call's task is read back: the store told of every result.
    expect(reads).toEqual([[1, 1]]);
    await watched.close();
  });

  it("queues the job as soon as the store has the request's id, and serves its tasks once the store has all of it", async () => {
    const sqlite = sqliteStore({ dbfile: join(dir, "early.sqlite") });
    let storedAt = 0;
    let submittedAt = 0;
    // The store's write ends a second after SQLite's: the tasks must wait for it.
    const slow: Store = Object.create(sqlite, {
      createRequest: {
        value: async (request: NewRequest) => {
          const created = await sqlite.createRequest(request);
          await new Promise((resolve) => setTimeout(resolve, 1000));
          storedAt = Date.now();
          return created;
        },
      },
    });
    const timed: Scheduler = {
      ...scheduler,
      async submit(spec) {
        submittedAt = Date.now();
        return scheduler.submit(spec);
      },
    };
    const early = createSheepdog({
      store: slow,
      cluster: { scheduler: timed, remote: localRemote() },
    });
    const args = Array.from({ length: 6 }, (_, x) => [x] as [number]);
    expect(await early.map(double, args)).toEqual(args.map(([x]) => x * 2));
    expect(submittedAt).toBeGreaterThan(0);
    expect(submittedAt).toBeLessThan(storedAt);
    const [request] = await sqlite.listRequests();
    const facts = await sqlite.getTaskFacts?.(request?.id ?? -1);
    const firstCall = Math.min(...(facts ?? []).map((entry) => entry?.startedAt ?? 0));
    expect(firstCall).toBeGreaterThanOrEqual(storedAt - 50);
    await early.close();
    await sqlite.close();
  });

  it("cancels a job queued early whose arguments the store could not take, and leaves no request", async () => {
    const sqlite = sqliteStore({ dbfile: join(dir, "changed.sqlite") });
    const sshDir = mkdtempSync(join(tmpdir(), "sheepdog-changed-"));
    const args = Array.from({ length: 120_000 }, (_, x) => [x] as [number]);
    // The caller changes the last argument once the store has begun the request (and the job is
    // being queued): it no longer fits the sizes the workers were told.
    const changing: Store = Object.create(sqlite, {
      createRequest: {
        value: (request: NewRequest) =>
          sqlite.createRequest({
            ...request,
            onCreating: (created) => {
              args[args.length - 1] = ["x".repeat(1000) as unknown as number];
              request.onCreating?.(created);
            },
          }),
      },
    });
    const changed = createSheepdog({
      store: changing,
      cluster: { scheduler, remote: localRemote() },
      sshDir,
      // Two tasks: this scheduler has no slots to size chunks by, so it would run one a call.
      chunkSize: 60_000,
    });
    const submitted = scheduler.log.submitted.length;
    const error = await changed.map(double, args).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "INVALID_INPUT",
      message: expect.stringContaining("args[119999] changed while the map was storing it"),
    });
    expect(scheduler.log.submitted.length).toBe(submitted + 1);
    expect(scheduler.log.cancelled).toContain(String(scheduler.log.submitted.length));
    expect(await sqlite.listRequests()).toEqual([]);
    expect(readdirSync(sshDir)).toEqual([]);
    await changed.close();
    await sqlite.close();
    rmSync(sshDir, { recursive: true, force: true });
  });

  it("asks the scheduler what memory limit its options mean", async () => {
    const limited = createSheepdog({
      store,
      cluster: { scheduler, remote: localRemote() },
      geOpts: ["--mem=400000000"],
    });
    const grab = py`
def f(mib):
    try:
        bytearray(mib * 1024 * 1024)
        return "fits"
    except MemoryError:
        return "MemoryError"
`;
    expect(await limited.map(grab, [[1], [1000]])).toEqual(["fits", "MemoryError"]);
    expect(scheduler.log.memoryLimits.at(-1)).toBe(400_000_000);
    await limited.close();
  });

  it("refuses another scheduler's options, naming both settings, before anything is submitted", async () => {
    const wrong = createSheepdog({
      store,
      cluster: { scheduler, remote: localRemote() },
      slurmOpts: ["--time=10"],
    });
    const requests = (await store.listRequests()).length;
    const error = await wrong.map(double, [[1]]).catch((e: unknown) => e);
    expect(SheepdogError.isInstance(error) && error.code).toBe("CONFIG_INVALID");
    expect((error as Error).message).toContain("slurmOpts is set");
    expect((error as Error).message).toContain(
      "the cluster's scheduler is test-processes, which takes its options in geOpts",
    );
    expect((await store.listRequests()).length).toBe(requests);
    await wrong.close();
  });

  it("gives the scheduler resources per task (time scaled by the calls of a task), and the memory as each task's limit", async () => {
    const sized = createSheepdog({
      store,
      cluster: { scheduler, remote: localRemote() },
      chunkSize: 3,
      resources: { memory: "300M", time: "1:00", queue: "short" },
    });
    const grab = py`
def f(mib):
    try:
        bytearray(mib * 1024 * 1024)
        return "fits"
    except MemoryError:
        return "MemoryError"
`;
    expect(await sized.map(grab, [[1], [1], [1000]])).toEqual(["fits", "fits", "MemoryError"]);
    expect(scheduler.log.submitted.at(-1)?.resources).toEqual({
      memoryBytes: 300 * 1024 ** 2,
      timeSeconds: 180,
      queue: "short",
    });
    await sized.close();
  });

  it("tells None from failure: mapSettled and throwOnError", async () => {
    const f = py`
def f(x):
    if x == 2:
        raise ValueError("two")
    return None
`;
    expect(await sheepdog.map(f, [[1], [2]])).toEqual([null, null]);
    const settled = await sheepdog.mapSettled(f, [[1], [2]]);
    expect(settled.results[0]).toEqual({ ok: true, value: null });
    expect(settled.results[1]).toMatchObject({ ok: false });
    expect(settled.results[1]?.ok === false && settled.results[1].error).toContain(
      "ValueError: two",
    );
    expect((await sheepdog.getErrors(settled.request)).map(([args]) => args)).toEqual([[2]]);

    const error = await sheepdog.map(f, [[1], [2], [3]], { throwOnError: true }).catch((e) => e);
    expect(TasksFailedError.isInstance(error)).toBe(true);
    expect(SheepdogError.isInstance(error)).toBe(true);
    const failed = error as TasksFailedError;
    expect(failed.code).toBe("TASK_FAILED");
    expect(failed.failures.map((f) => f.index)).toEqual([1]);
    expect(failed.failures[0]?.error).toContain("ValueError: two");
    expect(failed.detail).toMatchObject({ request: failed.request, tasks: 3, failed: 1 });
    expect(await sheepdog.map(f, [[1]], { throwOnError: true })).toEqual([null]);
  });

  it("mapAsync, then getResults with block, on the same instance", async () => {
    const id = await sheepdog.mapAsync(double, [[5], [6]]);
    expect(await sheepdog.getResults(id, { block: true })).toEqual([
      [[5], 10],
      [[6], 12],
    ]);
    expect((await sheepdog.status(id)).results).toBe(2);
  });

  it("installs no signal handler unless asked", async () => {
    const before = process.listenerCount("SIGINT");
    const slow = py`
def f(x):
    import time
    time.sleep(0.3)
    return x
`;
    const running = sheepdog.map(slow, [[1]]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(process.listenerCount("SIGINT")).toBe(before);
    await running;
  });

  it("refuses a setting of a default that a value replaces, and a value without the contract", async () => {
    expect(() => createSheepdog({ store, dbfile: "x.sqlite" })).toThrow(
      /"dbfile" configures the default store, but a store was given/,
    );
    expect(() =>
      createSheepdog({ cluster: { scheduler, remote: localRemote() }, host: "fear" }),
    ).toThrow(/"host" configures the default cluster/);
    expect(() => createSheepdog({ store: {} as Store })).toThrow(/The store given has no/);
    expect(() =>
      createSheepdog({ cluster: { scheduler: {} as never, remote: localRemote() } }),
    ).toThrow(/The cluster given needs a scheduler/);
  });

  it("closes what it opened, and refuses work after close", async () => {
    const own = createSheepdog({ store, cluster: { scheduler, remote: localRemote() } });
    const server = await own.serve();
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
    await own.close();
    await expect(fetch(`${server.url}/health`)).rejects.toThrow();
    const error = await own.map(double, [[1]]).catch((e) => e);
    expect(SheepdogError.isInstance(error) && error.code).toBe("CLOSED");
    // The store was given as a value: it stays open for its owner.
    expect((await store.listRequests()).length).toBeGreaterThan(0);
    await own.close();
  });
});

describe("what a program loads and leaves open", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "sheepdog-lazy-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("a program that passes its own store never loads better-sqlite3, nor ssh2 locally", async () => {
    const outcome = await runProgram(
      dir,
      "own-store.mjs",
      `${loadedPackages}
import { createSheepdog, py } from ${JSON.stringify(urls.core)};
import { memoryStore } from ${JSON.stringify(urls.testing)};
import { localRemote, localScheduler } from ${JSON.stringify(urls.local)};
const sheepdog = createSheepdog({
  store: memoryStore(),
  cluster: { scheduler: localScheduler({ concurrency: 2 }), remote: localRemote() },
});
const results = await sheepdog.map(py\`
def f(x):
    return x + 1
\`, [[1], [2]]);
await sheepdog.close();
console.log(JSON.stringify({ results, ...loaded() }));
`,
    );
    expect(outcome).toEqual({ results: [2, 3], betterSqlite3: false, ssh2: false });
  });

  it("the default map loads the SQLite store (the check above can tell), and not ssh2 for host local", async () => {
    const outcome = await runProgram(
      dir,
      "default-store.mjs",
      `${loadedPackages}
import { map, py, shutdown } from ${JSON.stringify(urls.core)};
const results = await map(py\`
def f(x):
    return x + 1
\`, [[1]], { host: "local", dbfile: ${JSON.stringify(join(dir, "lazy.sqlite"))} });
await shutdown();
console.log(JSON.stringify({ results, ...loaded() }));
`,
    );
    expect(outcome).toEqual({ results: [2], betterSqlite3: true, ssh2: false });
  });

  it("mapAsync then getResults({ block: true }) ends by itself, without shutdown()", async () => {
    const dbfile = join(dir, "exits.sqlite");
    const outcome = await runProgram(
      dir,
      "exits.mjs",
      `import { getResults, mapAsync, py } from ${JSON.stringify(urls.core)};
const id = await mapAsync(py\`
def f(x):
    return x * 3
\`, [[1], [2]], { host: "local", dbfile: ${JSON.stringify(dbfile)} });
const rows = await getResults(id, { dbfile: ${JSON.stringify(dbfile)}, block: true });
console.log(JSON.stringify(rows));
`,
    );
    // runProgram's timeout (60 s) fails the test if the program never ends.
    expect(outcome).toEqual([
      [[1], 3],
      [[2], 6],
    ]);
    expect(existsSync(dbfile)).toBe(true);
  }, 90_000);
});

/** The local addresses a TCP port is listened on, from /proc/net/tcp (hex, as the kernel writes them). */
function listeners(port: number): string[] {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  return readFileSync("/proc/net/tcp", "utf8")
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter(([, local, , state]) => state === "0A" && local?.endsWith(`:${hex}`))
    .map(([, local]) => local ?? "");
}

describe("who can reach the server", () => {
  it("a map of tasks on this machine, and serve, listen on 127.0.0.1 only", async () => {
    const store = memoryStore();
    await using sheepdog = createSheepdog({
      store,
      cluster: { scheduler: processScheduler(), remote: localRemote() },
    });
    const slow = py`
def f(x):
    import time
    time.sleep(1)
    return x
`;
    const running = sheepdog.mapSettled(slow, [[1]]);
    let port: unknown;
    for (let tries = 0; tries < 100 && port === undefined; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const [request] = await store.listRequests();
      port = request?.meta.port;
    }
    expect(typeof port).toBe("number");
    expect(listeners(port as number)).toEqual([
      `0100007F:${(port as number).toString(16).toUpperCase().padStart(4, "0")}`,
    ]);
    await running;

    const server = await sheepdog.serve();
    expect(server.host).toBe("127.0.0.1");
    expect(listeners(server.port)).toHaveLength(1);
    expect(listeners(server.port)[0]?.startsWith("0100007F:")).toBe(true);
    await server.close();
  });
});
