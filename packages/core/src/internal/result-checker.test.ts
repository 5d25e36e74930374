import { Worker } from "node:worker_threads";
import { SheepdogError } from "@sheepdog/contracts";
import { afterEach, describe, expect, it } from "vitest";
import {
  collidingIntDictOf,
  emptyDictsThenJunk,
  emptyLists,
  MB,
} from "../__fixtures__/hostile-pickles.js";
import { DecodePool } from "./decode-pool.js";
import { startDecodeWorker } from "./decode-worker.js";
import { INLINE_CHECK_BYTES, ResultChecker } from "./result-checker.js";

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

afterEach(async () => {
  await Promise.all(opened.splice(0).map((value) => value.close()));
});

describe("ResultChecker", () => {
  it("decodes small results at once, on this thread", () => {
    const checker = closedLater(new ResultChecker());
    expect(checker.check(none)).toBeUndefined();
    expect(checker.check(garbled)).toMatch(undecodable);
  });

  it("decodes at most INLINE_CHECK_BYTES here between polls for I/O, the rest on a worker", async () => {
    const checker = closedLater(new ResultChecker());
    const third = emptyLists(Math.floor(INLINE_CHECK_BYTES / 3));
    expect(checker.check(third)).toBeUndefined();
    expect(checker.check(third)).toBeUndefined();
    expect(checker.check(third)).toBeUndefined();
    const later = [checker.check(third), checker.check(none)];
    for (const check of later) expect(check).toBeInstanceOf(Promise);
    expect(await Promise.all(later)).toEqual([undefined, undefined]);
    await nextTurn();
    expect(checker.check(third)).toBeUndefined();
    const large = checker.check(emptyLists(INLINE_CHECK_BYTES + 1));
    expect(large).toBeInstanceOf(Promise);
    expect(await large).toBeUndefined();
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
    const checker = closedLater(new ResultChecker({ deadlineMs: 1000 }));
    const start = performance.now();
    // Seconds of work: every key of a megabyte collides with 32,767 others.
    const slow = checker.check(collidingIntDictOf(MB));
    // Waits behind it, and has its own deadline from when its turn comes.
    const next = checker.check(emptyLists(64 * 1024));
    expect(await slow).toBe(
      "The task returned a result that Sheepdog could not check (decoding it took longer than 1 s), so it is kept as this error instead. Return a smaller or simpler value, or save it to a file and return its path.",
    );
    expect(performance.now() - start).toBeLessThan(5000);
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

  it("decodes on two workers at once when it has two", async () => {
    const pool = closedLater(new DecodePool({ workers: 2, deadlineMs: 1500 }));
    // Each takes seconds: with one worker, the second would wait for the first's deadline.
    const start = performance.now();
    const both = await Promise.all([
      pool.decode(collidingIntDictOf(MB)),
      pool.decode(collidingIntDictOf(MB)),
    ]);
    expect(both.map((reason) => reason?.includes("longer than 1.5 s"))).toEqual([true, true]);
    expect(performance.now() - start).toBeLessThan(2800);
  });
});
