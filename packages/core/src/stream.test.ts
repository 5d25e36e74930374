import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { NewRequest, Scheduler } from "@sheepdog/contracts";
import { memoryStore } from "@sheepdog/contracts/testing";
import type { LocalScheduler } from "@sheepdog/local";
import { localRemote, localScheduler } from "@sheepdog/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { IndexedSettled, SheepdogConfig } from "./index.js";
import { createSheepdog, listRequests, mapStream, py, SheepdogError, shutdown } from "./index.js";

/** Squares x after sleeping `nap` seconds; leaves a file named x in `marks` when given one. */
const square = py<[number, number?, string?], number>`
def f(x, nap=0, marks=None):
    import time
    time.sleep(nap)
    if marks:
        open(marks + "/" + str(x), "w").close()
    return x * x
`;

/** An async generator of `[x, nap, marks]` for x below `n` that counts what was pulled. */
function counted(n: number, nap = 0, marks?: string) {
  const state = { pulled: 0, finished: false };
  async function* tuples() {
    try {
      for (let x = 0; x < n; x++) {
        state.pulled += 1;
        yield (marks ? [x, nap, marks] : [x, nap]) as [number, number, string?];
      }
    } finally {
      state.finished = true;
    }
  }
  return { state, tuples: tuples() };
}

/** Runs `use` with a local scheduler of `concurrency` slots and a local remote, closed after. */
async function onLocalCluster(
  concurrency: number,
  use: (cluster: {
    scheduler: LocalScheduler;
    remote: ReturnType<typeof localRemote>;
  }) => Promise<void>,
): Promise<void> {
  const scheduler = localScheduler({ concurrency });
  const remote = localRemote();
  try {
    await use({ scheduler, remote });
  } finally {
    await scheduler.close();
    await remote.close();
  }
}

/** `scheduler` with its own `submit` in place of the scheduler's. */
function withSubmit(scheduler: LocalScheduler, submit: Scheduler["submit"]): Scheduler {
  return {
    name: scheduler.name,
    submit,
    status: (job) => scheduler.status(job),
    cancel: (job) => scheduler.cancel(job),
    slots: () => scheduler.slots(),
  };
}

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe("mapStream on the local scheduler", () => {
  let dir: string;
  let config: SheepdogConfig;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "sheepdog-stream-"));
    config = { host: "local", dbfile: join(dir, "sheepdog.sqlite"), concurrency: 4 };
  });
  afterAll(async () => {
    await shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  const requestCount = async () =>
    existsSync(config.dbfile as string)
      ? (await listRequests({ dbfile: config.dbfile })).length
      : 0;

  it("yields every outcome once, as it completes, each window a request of its own", async () => {
    const before = await requestCount();
    // The first call sleeps: the others complete before it.
    const args = Array.from({ length: 10 }, (_, x) => [x, x === 0 ? 1.5 : 0] as [number, number]);
    const items = await all(mapStream(square, args, config, { windowSize: 5 }));
    expect(items.map((item) => item.index).sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
    for (const item of items)
      expect(item).toEqual({ index: item.index, ok: true, value: item.index ** 2 });
    expect(items[0]?.index).not.toBe(0);
    expect(await requestCount()).toBe(before + 2);
  });

  it('yields in argument order with order: "arguments", across windows', async () => {
    const args = Array.from(
      { length: 11 },
      (_, x) => [x, x % 4 === 0 ? 0.4 : 0] as [number, number],
    );
    const items = await all(mapStream(square, args, config, { order: "arguments", windowSize: 4 }));
    expect(items).toEqual(args.map(([x]) => ({ index: x, ok: true, value: x * x })));
  });

  it("gives a call that raised as an ok: false item with its traceback, the others as values", async () => {
    const inverse = py<[number], number>`
def f(x):
    return 1 / x
`;
    const items = await all(mapStream(inverse, [[1], [0], [4]], config, { order: "arguments" }));
    expect(items[0]).toEqual({ index: 0, ok: true, value: 1 });
    expect(items[1]).toMatchObject({ index: 1, ok: false });
    expect(items[1]?.ok === false && items[1].error).toMatch(/ZeroDivisionError: division by zero/);
    expect(items[2]).toEqual({ index: 2, ok: true, value: 0.25 });
  });

  it("reads an async generator lazily: at most four windows ahead of a slow consumer", async () => {
    const { state, tuples } = counted(1000);
    const seen: number[] = [];
    for await (const item of mapStream(square, tuples, config, { windowSize: 5 })) {
      seen.push(item.index);
      if (seen.length === 1) {
        // The consumer dawdles: four windows are read, no fifth.
        await sleep(2000);
        expect(state.pulled).toBe(20);
      }
      // A window is read only once every outcome of the oldest is taken.
      expect(state.pulled).toBeLessThanOrEqual((Math.floor(seen.length / 5) + 4) * 5);
      if (seen.length === 23) break;
    }
    expect(state.pulled).toBeLessThanOrEqual(45);
    expect(state.finished).toBe(true);
  });

  it("leaving the loop cancels the windows in flight: no later window is read, nothing runs on", async () => {
    const marks = join(dir, "marks-break");
    mkdirSync(marks);
    const before = await requestCount();
    const { state, tuples } = counted(40, 3, marks);
    for await (const item of mapStream(square, tuples, config, { windowSize: 4 })) {
      expect(item.ok).toBe(true);
      break;
    }
    expect(state.finished).toBe(true);
    expect(state.pulled).toBeLessThanOrEqual(16);
    const requests = (await listRequests({ dbfile: config.dbfile })).slice(before);
    expect(requests.length).toBeLessThanOrEqual(4);
    // The window still running was cancelled, and says so.
    expect(requests.some((r) => r.meta.cancelled !== undefined)).toBe(true);
    const marked = readdirSync(marks).length;
    await sleep(4000);
    // No call of the cancelled tasks finished afterwards, and none of a later window ran.
    expect(readdirSync(marks).length).toBe(marked);
    expect(readdirSync(marks).every((name) => Number(name) < 16)).toBe(true);
  }, 60_000);

  it("rejects with ABORTED when its signal aborts, cancelling the jobs", async () => {
    const before = await requestCount();
    const { state, tuples } = counted(20, 5);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 1500);
    const started = Date.now();
    const failure = await all(
      mapStream(square, tuples, config, { windowSize: 4, signal: controller.signal }),
    ).catch((error: unknown) => error);
    expect(SheepdogError.isInstance(failure) && failure.code).toBe("ABORTED");
    expect(Date.now() - started).toBeLessThan(5000);
    expect(state.finished).toBe(true);
    const requests = (await listRequests({ dbfile: config.dbfile })).slice(before);
    expect(requests.length).toBe(4);
    for (const request of requests) {
      expect(request.meta.cancelled).toEqual({ at: expect.any(Number), reason: "interrupted" });
    }
  }, 30_000);

  it("checks windowSize and order before reading any argument, and yields nothing for none", async () => {
    for (const [options, message] of [
      [
        { windowSize: 0 },
        /"windowSize" must be a whole number of argument tuples, at least 1, not 0\. Give one such as 200000/,
      ],
      [{ windowSize: 2.5 }, /"windowSize" must be a whole number/],
      [{ order: "random" }, /"order" must be "completion" or "arguments", not "random"\./],
    ] as const) {
      const { state, tuples } = counted(3);
      const failure = await all(mapStream(square, tuples, config, options as object)).catch(
        (error: unknown) => error,
      );
      expect(SheepdogError.isInstance(failure) && failure.code).toBe("CONFIG_INVALID");
      expect((failure as Error).message).toMatch(message);
      expect(state.pulled).toBe(0);
    }
    const failure = await all(mapStream(square, [[1, 0], 2] as never, config)).catch(
      (error: unknown) => error,
    );
    expect(SheepdogError.isInstance(failure) && failure.code).toBe("INVALID_INPUT");
    expect((failure as Error).message).toContain("args[1] must be an array");
    expect(await all(mapStream(square, [], config))).toEqual([]);
  });

  it("runs on an instance: createSheepdog(...).mapStream", async () => {
    await using sheepdog = createSheepdog({
      host: "local",
      dbfile: join(dir, "instance.sqlite"),
      concurrency: 2,
    });
    const items: IndexedSettled<number>[] = await all(
      sheepdog.mapStream(square, [[2], [3]], { order: "arguments" }),
    );
    expect(items).toEqual([
      { index: 0, ok: true, value: 4 },
      { index: 1, ok: true, value: 9 },
    ]);
  });

  it("lists a window aborted after its tuples were stored, before its job, as interrupted", async () => {
    const store = memoryStore();
    const controller = new AbortController();
    const abortingStore = new Proxy(store, {
      get(target, name) {
        if (name !== "createRequest") return Reflect.get(target, name, target);
        return async (request: NewRequest) => {
          const created = await target.createRequest(request);
          controller.abort();
          return created;
        };
      },
    });
    await onLocalCluster(2, async (cluster) => {
      await using sheepdog = createSheepdog({ store: abortingStore, cluster });
      const failure = await all(
        sheepdog.mapStream(square, [[1], [2], [3]], { signal: controller.signal }),
      ).catch((error: unknown) => error);
      expect(SheepdogError.isInstance(failure) && failure.code).toBe("ABORTED");
      const [request, ...others] = await store.listRequests();
      expect(others).toEqual([]);
      expect(request?.meta.job).toBeUndefined();
      expect(request?.meta.cancelled).toEqual({ at: expect.any(Number), reason: "interrupted" });
    });
  });

  it("pickles each tuple as it is read: a generator may reuse one array for every tuple", async () => {
    function* reusing() {
      const tuple: [number] = [0];
      for (let x = 0; x < 12; x++) {
        tuple[0] = x;
        yield tuple;
      }
    }
    const items = await all(
      mapStream(square, reusing(), config, { order: "arguments", windowSize: 5 }),
    );
    // Plain objects, as the consumer may compare them so.
    expect(items).toStrictEqual(
      Array.from({ length: 12 }, (_, x) => ({ index: x, ok: true, value: x * x })),
    );
  });

  it("names the argument tuple that cannot be pickled, in whichever window it comes", async () => {
    const args = [[1], [2], [3], [() => 4]] as [number][];
    await expect(all(mapStream(square, args, config, { windowSize: 2 }))).rejects.toMatchObject({
      code: "PICKLE_ENCODE",
      message: expect.stringContaining("args[3]: Cannot pickle value[0]: a function"),
    });
  });

  it("lets the event loop turn while it reads a large window of a synchronous generator", async () => {
    const pulledAtTurns: number[] = [];
    let pulled = 0;
    function* tuples() {
      for (let x = 0; x < 20_000; x++) {
        pulled += 1;
        yield [x] as [number];
      }
    }
    let turning = true;
    const turn = () => {
      pulledAtTurns.push(pulled);
      if (turning) setImmediate(turn);
    };
    setImmediate(turn);
    const identity = py<[number], number>`
def f(x):
    return x
`;
    let count = 0;
    try {
      for await (const item of mapStream(identity, tuples(), config, { windowSize: 20_000 })) {
        if (item.ok) count += 1;
      }
    } finally {
      turning = false;
    }
    expect(count).toBe(20_000);
    // Turns of the event loop came while the window was half read.
    expect(pulledAtTurns.filter((at) => at > 0 && at < 20_000).length).toBeGreaterThan(2);
  });

  it("reads the next window only once the last one's tuples are stored", async () => {
    const { state, tuples } = counted(15);
    const store = memoryStore();
    const pulledWhenStoring: number[] = [];
    const slowStore = new Proxy(store, {
      get(target, name) {
        if (name !== "createRequest") return Reflect.get(target, name, target);
        return async (request: NewRequest) => {
          pulledWhenStoring.push(state.pulled);
          await sleep(300);
          return target.createRequest(request);
        };
      },
    });
    await onLocalCluster(2, async (cluster) => {
      await using sheepdog = createSheepdog({ store: slowStore, cluster });
      const items = await all(sheepdog.mapStream(square, tuples, { windowSize: 5 }));
      expect(items).toHaveLength(15);
      // While a window's tuples are being stored, the next window has not been read.
      expect(pulledWhenStoring).toEqual([5, 10, 15]);
    });
  });

  it("polls a running window that has handed out all it had at most every 200 ms", async () => {
    const store = memoryStore();
    // The stream reads a window's results once per poll that finds some (in one or a few
    // reads together); nothing else of a stream reads them.
    const reads: number[] = [];
    const counting = new Proxy(store, {
      get(target, name) {
        const value = Reflect.get(target, name, target);
        if (typeof value !== "function") return value;
        if (name !== "getResultRange") return value.bind(target);
        return (...args: unknown[]) => {
          reads.push(performance.now());
          return value.apply(target, args);
        };
      },
    });
    await onLocalCluster(4, async (cluster) => {
      await using sheepdog = createSheepdog({ store: counting, cluster, chunkSize: 1 });
      // One window of 40 one-call tasks of different lengths: on 4 slots, their reports come
      // one by one, tens of milliseconds apart, for a second or two.
      const args = Array.from(
        { length: 40 },
        (_, x) => [x, 0.05 + (x % 4) * 0.06] as [number, number],
      );
      const items = await all(sheepdog.mapStream(square, args, { windowSize: 40 }));
      expect(items).toHaveLength(40);
      const polls = reads.filter((at, i) => i === 0 || at - (reads[i - 1] as number) > 50);
      // The last poll, once the window's wait is over, is not held back.
      const running = polls.slice(0, -1);
      expect(running.length).toBeGreaterThanOrEqual(3);
      for (let i = 1; i < running.length; i++) {
        expect((running[i] as number) - (running[i - 1] as number)).toBeGreaterThanOrEqual(190);
      }
    });
  });

  it("asks the scheduler its slots once, and runs a window another follows as a task for every four slots", async () => {
    let slotQuestions = 0;
    // Tasks by request: windows' jobs may be submitted out of order (one is read while the
    // last one's job is submitted).
    const tasksPerJob = new Map<number, number>();
    await onLocalCluster(4, async ({ scheduler, remote }) => {
      const counting: Scheduler = {
        name: scheduler.name,
        submit: async (spec) => {
          tasksPerJob.set(Number(/^sheepdog_(\d+)_/.exec(spec.name)?.[1]), spec.tasks);
          return scheduler.submit(spec);
        },
        status: (job) => scheduler.status(job),
        cancel: (job) => scheduler.cancel(job),
        slots: () => {
          slotQuestions += 1;
          return scheduler.slots();
        },
      };
      await using sheepdog = createSheepdog({
        dbfile: join(dir, "slots.sqlite"),
        cluster: { scheduler: counting, remote },
      });
      const args = Array.from({ length: 28 }, (_, x) => [x] as [number]);
      const items = await all(sheepdog.mapStream(square, args, { windowSize: 12 }));
      expect(items).toHaveLength(28);
      // Windows of 12, 12 and 4 tuples on 4 slots: a task of 12 each for the first two (a map
      // of 12 would have 6 tasks of 2), and the last, which no window follows, as a map: 4 of 1.
      expect([...tasksPerJob].sort(([a], [b]) => a - b)).toEqual([
        [1, 1],
        [2, 1],
        [3, 4],
      ]);
      expect(slotQuestions).toBe(1);
    });
  });

  it("reads the next window while the last one's job is being submitted", async () => {
    let secondWindowRead = () => {};
    const read = new Promise<void>((resolve) => {
      secondWindowRead = resolve;
    });
    let readWhileSubmitting: boolean | undefined;
    await onLocalCluster(4, async ({ scheduler, remote }) => {
      const slowFirstSubmission = withSubmit(scheduler, async (spec) => {
        readWhileSubmitting ??= await Promise.race([
          read.then(() => true),
          sleep(5_000).then(() => false),
        ]);
        return scheduler.submit(spec);
      });
      await using sheepdog = createSheepdog({
        dbfile: join(dir, "read-ahead.sqlite"),
        cluster: { scheduler: slowFirstSubmission, remote },
      });
      function* args() {
        for (let x = 0; x < 8; x++) {
          if (x === 4) secondWindowRead();
          yield [x] as [number];
        }
      }
      const items = await all(sheepdog.mapStream(square, args(), { windowSize: 4 }));
      expect(items.map((item) => item.index).sort((a, b) => a - b)).toEqual([
        0, 1, 2, 3, 4, 5, 6, 7,
      ]);
      expect(readWhileSubmitting).toBe(true);
    });
  });

  it("submits the windows' jobs in their order, even when a later window is ready first", async () => {
    let secondSubmit = () => {};
    const second = new Promise<void>((resolve) => {
      secondSubmit = resolve;
    });
    const submitted: number[] = [];
    let overtaken: boolean | undefined;
    await onLocalCluster(4, async ({ scheduler, remote }) => {
      const slowFirstSubmission = withSubmit(scheduler, async (spec) => {
        if (overtaken === undefined) {
          // The first window's submission is slow: does the second one's come meanwhile?
          overtaken = false;
          overtaken = await Promise.race([second.then(() => true), sleep(1_000).then(() => false)]);
        } else {
          secondSubmit();
        }
        // The job's name is sheepdog_<request>_<random>.
        submitted.push(Number(spec.name.split("_")[1]));
        return scheduler.submit(spec);
      });
      await using sheepdog = createSheepdog({
        dbfile: join(dir, "in-order.sqlite"),
        cluster: { scheduler: slowFirstSubmission, remote },
      });
      const args = Array.from({ length: 12 }, (_, x) => [x] as [number]);
      const items = await all(sheepdog.mapStream(square, args, { windowSize: 4 }));
      expect(items.map((item) => item.index).sort((a, b) => a - b)).toEqual(args.map(([x]) => x));
      expect(overtaken).toBe(false);
      expect(submitted).toHaveLength(3);
      expect(submitted).toEqual([...submitted].sort((a, b) => a - b));
    });
  });
});
