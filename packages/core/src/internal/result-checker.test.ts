import { Worker } from "node:worker_threads";
import { SheepdogError } from "@sheepdog/contracts";
import { afterEach, describe, expect, it } from "vitest";
import {
  collidingIntDictOf,
  collidingIntSet,
  emptyDictsThenJunk,
  emptyLists,
  MB,
} from "../__fixtures__/hostile-pickles.js";
import { BATCH_BYTES, DecodePool } from "./decode-pool.js";
import type { DecodeBatch } from "./decode-worker.js";
import { startDecodeWorker } from "./decode-worker.js";
import { INLINE_CHECK_BYTES, INLINE_CHECK_MS, ResultChecker } from "./result-checker.js";

// The checker runs from this TypeScript source here: its worker threads evaluate their program
// and import @sheepdog/serialise by its resolved URL, as they do from core's build (which
// dist-result-check.test.ts runs in a child process).

const none = new Uint8Array([0x80, 4, 0x4e, 0x2e]);
const garbled = new Uint8Array([0x80, 4, 0xff, 0x2e]);
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
const undecodable =
  /^The task returned a result that Sheepdog cannot decode, so it is kept as this error instead: \[sheepdog\] \[serialise\] Cannot decode pickle at byte \d+/;

const opened: { close(): Promise<void> }[] = [];
/** A checker or pool closed after the test. */
function closedLater<T extends { close(): Promise<void> }>(value: T): T {
  opened.push(value);
  return value;
}

/** Starts decode workers that note the lengths of each batch sent to them in `sent`. */
function counted(sent: number[][]) {
  return () => {
    const worker = startDecodeWorker();
    const post = worker.postMessage.bind(worker);
    worker.postMessage = (
      message: DecodeBatch,
      transfer?: Parameters<Worker["postMessage"]>[1],
    ) => {
      sent.push(message.lengths);
      post(message, transfer);
    };
    return worker;
  };
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((value) => value.close()));
});

describe("ResultChecker", () => {
  it("decodes small results at once, on this thread", () => {
    const checker = closedLater(new ResultChecker());
    expect(checker.check(none)).toBeUndefined();
    expect(checker.check(garbled)).toMatch(undecodable);
  });

  it("decodes a result of more than INLINE_CHECK_BYTES on a worker thread", async () => {
    const checker = closedLater(new ResultChecker());
    const large = checker.check(emptyLists(INLINE_CHECK_BYTES + 1));
    expect(large).toBeInstanceOf(Promise);
    expect(await large).toBeUndefined();
    expect(checker.check(emptyLists(INLINE_CHECK_BYTES))).toBeUndefined();
  });

  it("decodes here for INLINE_CHECK_MS between polls for I/O, then on a worker thread", async () => {
    const checker = closedLater(new ResultChecker());
    // About 11 ms each here: 3,270 members that collide in V8's hash.
    const slow = collidingIntSet(3270, INLINE_CHECK_BYTES);
    const start = performance.now();
    let inline = 0;
    let check = checker.check(slow);
    for (; typeof check !== "object" && inline < 100; check = checker.check(slow)) inline++;
    const spent = performance.now() - start;
    expect(inline).toBeGreaterThan(0);
    expect(spent).toBeGreaterThanOrEqual(INLINE_CHECK_MS);
    // The budget, not the loop's cap of 100 checks (over a second of work here), stopped it.
    expect(inline).toBeLessThan(100);
    const later = [check, checker.check(none)];
    for (const each of later) expect(each).toBeInstanceOf(Promise);
    expect(await Promise.all(later)).toEqual([undefined, undefined]);
    await nextTurn();
    expect(checker.check(none)).toBeUndefined();
  });

  it("decodes large results on a worker thread while this one runs on", async () => {
    const checker = closedLater(new ResultChecker());
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    try {
      const [good, bad] = await Promise.all([
        checker.check(emptyLists(MB)),
        checker.check(emptyDictsThenJunk(MB)),
      ]);
      expect(good).toBeUndefined();
      expect(bad).toMatch(undecodable);
      expect(bad).toMatch(/at byte 1048574 \(unknown opcode 0xff\)/);
    } finally {
      clearInterval(ticker);
    }
    // Two megabytes of empty objects take this thread a second or more to decode.
    expect(ticks).toBeGreaterThan(10);
  });

  it("keeps a result that takes past the deadline as an error, and replaces that worker", async () => {
    // Seconds, so that a busy machine still decodes the quick ones well within the deadline.
    const checker = closedLater(new ResultChecker({ deadlineMs: 3000 }));
    const start = performance.now();
    // Seconds of work: every key of a megabyte collides with 32,767 others.
    const slow = checker.check(collidingIntDictOf(MB));
    // Waits behind it, and has its own deadline from when its turn comes.
    const next = checker.check(emptyLists(64 * 1024));
    expect(await slow).toBe(
      "The task returned a result that Sheepdog could not check (decoding it took longer than 3 s), so it is kept as this error instead. Return a smaller or simpler value, or save it to a file and return its path.",
    );
    expect(performance.now() - start).toBeLessThan(7000);
    expect(await next).toBeUndefined();
    expect(await checker.check(emptyDictsThenJunk(64 * 1024))).toMatch(undecodable);
  });

  it("rejects checks with CLOSED once closed, those waiting too", async () => {
    const checker = new ResultChecker();
    const failed = (check: unknown) => (check as Promise<unknown>).catch((e: unknown) => e);
    const waiting = failed(checker.check(collidingIntDictOf(MB)));
    const queued = failed(checker.check(emptyLists(MB)));
    await checker.close();
    for (const error of [
      await waiting,
      await queued,
      await failed(checker.check(emptyLists(MB))),
    ]) {
      expect(SheepdogError.isInstance(error) && error.code).toBe("CLOSED");
    }
    await checker.close();
  });
});

describe("DecodePool", () => {
  it("keeps a result whose decoding runs its worker out of memory as an error, and goes on", async () => {
    const pool = closedLater(
      new DecodePool({ workers: 1, deadlineMs: 30_000, start: () => startDecodeWorker(32) }),
    );
    expect(await pool.decode(emptyLists(8 * MB))).toMatch(
      /^The task returned a result that Sheepdog could not check \(decoding it stopped the thread that checks results: .*memory.*\), so it is kept as this error instead\./,
    );
    expect(await pool.decode(none)).toBeUndefined();
  });

  it("rejects with INTERNAL when its worker cannot start", async () => {
    const pool = closedLater(
      new DecodePool({
        workers: 1,
        deadlineMs: 30_000,
        start: () => new Worker("throw new Error('no decoder here')", { eval: true }),
      }),
    );
    const error = await pool.decode(none).catch((e: unknown) => e);
    expect(SheepdogError.isInstance(error) && error.code).toBe("INTERNAL");
    expect((error as Error).message).toBe(
      "[sheepdog] [core] The thread that checks results could not start: no decoder here. Check that @sheepdog/serialise is installed beside @sheepdog/core.",
    );
  });

  it("sends the pickles asked for together in batches of up to BATCH_BYTES", async () => {
    const sent: number[][] = [];
    const pool = closedLater(
      new DecodePool({ workers: 1, deadlineMs: 30_000, start: counted(sent) }),
    );
    const many = Array.from({ length: 1000 }, (_, i) => (i === 500 ? garbled : none));
    const reasons = await Promise.all(many.map((pickle) => pool.decode(pickle)));
    expect(reasons.filter((reason) => reason !== undefined)).toHaveLength(1);
    expect(reasons[500]).toMatch(undecodable);
    const large = emptyLists(BATCH_BYTES / 2 + 1);
    await Promise.all([pool.decode(large), pool.decode(large), pool.decode(none)]);
    expect(sent.map((lengths) => lengths.length)).toEqual([1000, 1, 2]);
  });

  it("decodes again, each alone, the pickles of a batch that ran past the deadline", async () => {
    const sent: number[][] = [];
    // Deadlines of seconds, so that a busy machine (CI runs two packages' tests on two cores)
    // still decodes the quick ones, and starts a new worker, well within them.
    const pool = closedLater(
      new DecodePool({ workers: 1, deadlineMs: 3000, start: counted(sent) }),
    );
    // Many seconds of work, in one batch (under BATCH_BYTES) with two that take milliseconds.
    const slow = collidingIntDictOf(512 * 1024);
    const reasons = await Promise.all(
      [emptyLists(64 * 1024), slow, emptyDictsThenJunk(64 * 1024)].map((p) => pool.decode(p)),
    );
    expect(reasons[0]).toBeUndefined();
    expect(reasons[1]).toMatch(/could not check \(decoding it took longer than 3 s\)/);
    expect(reasons[2]).toMatch(undecodable);
    expect(sent.map((lengths) => lengths.length)).toEqual([3, 1, 1, 1]);
  });

  it("decodes on two workers at once when it has two", async () => {
    let posted = 0;
    const start = (): Worker => {
      const worker = startDecodeWorker();
      const post = worker.postMessage.bind(worker);
      worker.postMessage = ((...args: Parameters<Worker["postMessage"]>) => {
        posted++;
        post(...args);
      }) as Worker["postMessage"];
      return worker;
    };
    const pool = closedLater(new DecodePool({ workers: 2, deadlineMs: 3000, start }));
    // Each takes about 8 s to decode. With two workers both are on their way at once; with
    // one, the second would wait for the first's 3 s deadline. Counted, not timed.
    const both = Promise.all([
      pool.decode(collidingIntDictOf(MB)),
      pool.decode(collidingIntDictOf(MB)),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(posted).toBe(2);
    expect((await both).map((reason) => reason?.includes("longer than 3 s"))).toEqual([true, true]);
  });
});
