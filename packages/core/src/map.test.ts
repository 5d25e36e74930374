import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sqliteStore } from "@sheepdog/store-sqlite";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { MapProgress, SheepdogConfig } from "./index.js";
import {
  cancelRequest,
  getErrors,
  getResults,
  listRequests,
  map,
  mapAsync,
  py,
  requestStatus,
  shutdown,
  tuple,
} from "./index.js";

describe("a function with a syntax error", () => {
  it("is reported before a failure to reach the cluster, its check running meanwhile", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sheepdog-core-"));
    try {
      const broken = py`
def f(x):
    return [x for x in]
`;
      // Nothing listens on port 1: the connection fails at once, the check takes longer.
      const config = { host: "127.0.0.1", sshPort: 1, dbfile: join(dir, "s.sqlite") };
      const error = await map(broken, [[1]], config).catch((caught: unknown) => caught);
      expect(error).toMatchObject({
        code: "INVALID_INPUT",
        message: expect.stringContaining("has a Python syntax error at line 3"),
      });
      // Nothing was stored: the results file was not even made.
      expect(existsSync(config.dbfile)).toBe(false);
    } finally {
      await shutdown();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("map on the local scheduler", () => {
  let dir: string;
  let config: SheepdogConfig;
  /** The meta of request `id` in the config's dbfile. */
  async function metaOf(id: number): Promise<Record<string, unknown>> {
    const store = sqliteStore({ dbfile: config.dbfile as string });
    try {
      return (await store.getRequest(id)).meta;
    } finally {
      await store.close();
    }
  }
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "sheepdog-core-"));
    config = { host: "local", dbfile: join(dir, "sheepdog.sqlite"), concurrency: 4 };
  });
  afterAll(async () => {
    await shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  const add = py`
def f(a, b):
    return a + b
`;

  it("returns results in argument order, with Python's types mapped to JavaScript", async () => {
    const values = py`
def f(x):
    return {"x": x, "pair": (x, -x), "big": 2 ** 70 * x, "none": None}
`;
    const results = await map(values, [[1], [2], [3]], config);
    expect(results).toEqual(
      [1, 2, 3].map((x) => ({
        x,
        pair: tuple(x, -x),
        big: 2n ** 70n * BigInt(x),
        none: null,
      })),
    );
  });

  it("takes any iterable of argument tuples, and returns [] for none", async () => {
    function* pairs() {
      yield [1, 2];
      yield ["a", "b"];
    }
    expect(await map(add, pairs(), config)).toEqual([3, "ab"]);
    expect(await map(add, [], config)).toEqual([]);
  });

  it("gives the function its namespace: values and other py functions", async () => {
    const f = py`
def f(a, b):
    return a + g(b) + constant
`;
    const g = py`
def g(x):
    return x * 2
`;
    expect(
      await map(
        f,
        [
          [1, 2],
          [2, 3],
          [3, 4],
        ],
        config,
        { ns: { g, constant: 12 } },
      ),
    ).toEqual([17, 20, 23]);
  });

  it("gives null for a failed task, and getErrors the traceback", async () => {
    const f = py`
def f(x):
    if x == 2:
        raise ValueError("two is not allowed")
    return x
`;
    const progress: MapProgress[] = [];
    const results = await map(f, [[1], [2], [3]], config, { onProgress: (p) => progress.push(p) });
    expect(results).toEqual([1, null, 3]);
    const last = progress.at(-1);
    expect(last).toMatchObject({ tasks: 3, results: 2, errors: 1 });
    const errors = await getErrors(last?.request ?? 0, { dbfile: config.dbfile });
    expect(errors).toHaveLength(1);
    expect(errors[0]?.[0]).toEqual([2]);
    expect(errors[0]?.[1]).toMatch(/Traceback[\s\S]*ValueError: two is not allowed/);
  });

  it("turns a task that dies without reporting into an error carrying the cause", async () => {
    const f = py`
def f(x):
    import os, signal
    if x == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return x
`;
    const progress: MapProgress[] = [];
    expect(await map(f, [[0], [1]], config, { onProgress: (p) => progress.push(p) })).toEqual([
      0,
      null,
    ]);
    const [[args, error] = []] = await getErrors(progress.at(-1)?.request ?? 0, {
      dbfile: config.dbfile,
    });
    expect(args).toEqual([1]);
    expect(error).toContain("ended without reporting a result");
    expect(error).toContain("killed by signal 9 (SIGKILL)");
  });

  it("runs mapAsync, then getResults blocks until every task is in", async () => {
    const slow = py`
def f(x):
    import time
    time.sleep(0.5)
    return x * 10
`;
    const id = await mapAsync(slow, [[1], [2]], config);
    expect((await requestStatus(id, { dbfile: config.dbfile })).tasks).toBe(2);
    const rows = await getResults(id, { dbfile: config.dbfile, block: true });
    expect(rows).toEqual([
      [[1], 10],
      [[2], 20],
    ]);
    const listed = await listRequests({ dbfile: config.dbfile });
    expect(listed.find((r) => r.id === id)).toMatchObject({ tasks: 2, results: 2, errors: 0 });
  });

  it("runs several argument tuples per array task with chunkSize, results and errors still per tuple", async () => {
    const f = py`
def f(x):
    if x == 4:
        raise KeyError(x)
    return x * x
`;
    const progress: MapProgress[] = [];
    const args = [0, 1, 2, 3, 4, 5, 6].map((x) => [x]);
    const results = await map(
      f,
      args,
      { ...config, chunkSize: 3 },
      {
        onProgress: (p) => progress.push(p),
      },
    );
    expect(results).toEqual([0, 1, 4, 9, null, 25, 36]);
    const id = progress.at(-1)?.request ?? 0;
    expect((await requestStatus(id, { dbfile: config.dbfile })).job?.tasks).toBe(3);
    const errors = await getErrors(id, { dbfile: config.dbfile });
    expect(errors.map(([args]) => args)).toEqual([[4]]);
  });

  it("chunks automatically: about two array tasks per slot", async () => {
    const progress: MapProgress[] = [];
    const args = Array.from({ length: 100 }, (_, i) => [i, 1]);
    const results = await map(add, args, config, { onProgress: (p) => progress.push(p) });
    expect(results).toEqual(args.map(([i]) => (i ?? 0) + 1));
    const status = await requestStatus(progress.at(-1)?.request ?? 0, { dbfile: config.dbfile });
    expect(status.job?.tasks).toBe(8); // concurrency 4: 2 tasks per slot, 13 tuples each
  });

  it("lets a task that is done claim the tasks whose array task has not started", async () => {
    const slow = py`
def f(x):
    import time
    time.sleep(0.3)
    return x * 10
`;
    const progress: MapProgress[] = [];
    const args = Array.from({ length: 8 }, (_, i) => [i]);
    const results = await map(
      slow,
      args,
      { ...config, chunkSize: 1 },
      { onProgress: (p) => progress.push(p) },
    );
    expect(results).toEqual(args.map(([x]) => (x ?? 0) * 10));
    const claims = (await metaOf(progress.at(-1)?.request ?? 0)).claims as Record<string, number>;
    // Concurrency 4: tasks 5 to 8 wait for a slot, and the first four keep theirs while
    // anything is left to claim.
    for (const task of [5, 6, 7, 8]) expect(claims[task]).toBeLessThan(task);
  });

  it("does not let tasks claim others when nobody waits for the job (mapAsync)", async () => {
    const request = await mapAsync(
      add,
      Array.from({ length: 8 }, (_, i) => [i, 1]),
      { ...config, chunkSize: 1 },
    );
    expect(await getResults(request, { dbfile: config.dbfile, block: true })).toHaveLength(8);
    expect(await metaOf(request)).not.toHaveProperty("claims");
  });

  it("does not let tasks claim others when each call has a time limit", async () => {
    const progress: MapProgress[] = [];
    const limited = { ...config, chunkSize: 1, resources: { time: "0:30" } };
    expect(
      await map(
        add,
        [
          [1, 1],
          [2, 2],
          [3, 3],
        ],
        limited,
        { onProgress: (p) => progress.push(p) },
      ),
    ).toEqual([2, 4, 6]);
    expect(await metaOf(progress.at(-1)?.request ?? 0)).not.toHaveProperty("claims");
  });

  it("works with every pickle protocol", async () => {
    for (const pickleProtocol of [2, 3, 4, 5]) {
      expect(await map(add, [[[1], [2]]], { ...config, pickleProtocol })).toEqual([[1, 2]]);
    }
  });

  it("cancels the job and rejects with ABORTED when aborted", async () => {
    const sleepy = py`
def f(x):
    import time
    time.sleep(30)
    return x
`;
    const controller = new AbortController();
    const progress: MapProgress[] = [];
    const started = Date.now();
    const running = map(sleepy, [[1], [2]], config, {
      signal: controller.signal,
      onProgress: (p) => {
        progress.push(p);
        if (p.running > 0) controller.abort();
      },
    });
    await expect(running).rejects.toMatchObject({ code: "ABORTED" });
    // The request is marked cancelled, so that listings do not show it in progress.
    const request = progress[0]?.request;
    const listed = (await listRequests({ dbfile: config.dbfile })).find((r) => r.id === request);
    expect(listed?.meta.cancelled).toEqual({ at: expect.any(Number), reason: "interrupted" });
    // The tasks were sent SIGTERM: they are gone within moments, long before their 30 s sleep.
    let states: string[] = [];
    for (let tries = 0; tries < 50; tries++) {
      const status = await requestStatus(progress[0]?.request ?? 0, { dbfile: config.dbfile });
      states = [...(status.taskStates?.values() ?? [])].map((state) => state.state);
      if (states.every((state) => state === "finished")) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(states).toEqual(["finished", "finished"]);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it("marks a request whose job cancelRequest cancelled as cancelled", async () => {
    const sleepy = py`
def f(x):
    import time
    time.sleep(30)
    return x
`;
    const id = await mapAsync(sleepy, [[1]], config);
    const job = await cancelRequest(id, config);
    expect(job.scheduler).toBe("local");
    const listed = (await listRequests({ dbfile: config.dbfile })).find((r) => r.id === id);
    expect(listed?.meta.cancelled).toEqual({ at: expect.any(Number), reason: "cancelled" });
  });

  it("prints progress and a pointer to the errors with verbose", async () => {
    const writes: string[] = [];
    const spy = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
      writes.push(String(chunk));
      return true;
    });
    try {
      const f = py`
def f(x):
    return 1 / x
`;
      await map(f, [[1], [0]], config, { verbose: true });
    } finally {
      spy.mockRestore();
    }
    const text = writes.join("");
    expect(text).toMatch(/\[sheepdog\] request \d+: 2\/2 done \(1 failed\)/);
    expect(text).toMatch(/1 of 2 tasks failed\. See why with getErrors\(\d+, \{ dbfile: /);
  });

  it("looks up nothing in a dbfile that does not exist, and creates none", async () => {
    const missing = join(dir, "missing.sqlite");
    const lookups = [
      () => getResults(1, { dbfile: missing }),
      () => getResults(1, { dbfile: missing, block: true }),
      () => getErrors(1, { dbfile: missing }),
      () => listRequests({ dbfile: missing }),
      () => requestStatus(1, { dbfile: missing }),
    ];
    for (const lookup of lookups) {
      await expect(lookup()).rejects.toMatchObject({
        code: "CONFIG_INVALID",
        message: expect.stringContaining(
          `There is no dbfile ${missing}, so it holds no requests (it was not created). Run a map first`,
        ),
      });
    }
    expect(existsSync(missing)).toBe(false);
    // A map creates it.
    expect(await map(add, [[1, 2]], { ...config, dbfile: missing })).toEqual([3]);
    expect(await getResults(1, { dbfile: missing })).toEqual([[[1, 2], 3]]);
  });

  it("refuses bad input with errors that name the fix", async () => {
    await expect(map((() => 1) as never, [[1]], config)).rejects.toMatchObject({
      code: "INVALID_INPUT",
      message: expect.stringContaining("py`def f(x): ...`"),
    });
    await expect(map(add, [[1, 2], 3 as never], config)).rejects.toThrow(
      "args[1] must be an array of positional arguments; wrap a single argument as [x].",
    );
    const unpicklable = [
      [1, 2],
      [3, () => 4],
    ] as [number, number][];
    await expect(map(add, unpicklable, config)).rejects.toMatchObject({
      code: "PICKLE_ENCODE",
      message: expect.stringContaining("args[1]: Cannot pickle value[1]: a function"),
    });
    await expect(map(add, [[1, 2]], config, { ns: { "not-a-name": 1 } })).rejects.toThrow(
      'ns key "not-a-name" is not a Python identifier',
    );
    await expect(map(add, [[1, 2]], { ...config, ge_opts: [] } as never)).rejects.toMatchObject({
      code: "CONFIG_INVALID",
    });
    await expect(getResults(0)).rejects.toMatchObject({ code: "INVALID_INPUT" });
    await expect(getResults(9999, { dbfile: config.dbfile })).rejects.toMatchObject({
      code: "REQUEST_NOT_FOUND",
    });
  });
});
