import { describe, expect, it } from "vitest";
import { asBuffer, show, utf8 } from "./bytes.js";
import { expectFailure } from "./expect-failure.js";
import type { StoreSuite } from "./suite.js";

/** The sizes of the "scale" group, resolved from the options of `describeStoreContract`. */
export interface ScaleSizes {
  /** How many tasks the big request has. */
  manyTasks: number;
  /** The size of the large argument and result, in bytes. */
  largeBytes: number;
  /** Timeout of each of the two tests, in milliseconds. */
  heavyTimeout: number;
}

/** The "scale" group: large values, and a request of many tasks. */
export function describeScale(suite: StoreSuite, sizes: ScaleSizes): void {
  describe("scale", () => {
    largeValuesTest(suite, sizes);
    manyTasksTest(suite, sizes);
  });
}

/** Values of `largeBytes` bytes come back whole. */
function largeValuesTest(suite: StoreSuite, { largeBytes, heavyTimeout }: ScaleSizes): void {
  const { open } = suite;

  it(
    `stores values of ${largeBytes} bytes`,
    async () => {
      const store = await open();
      const bigArg = patterned(largeBytes, 1);
      const bigResult = patterned(largeBytes, 2);
      const bigError = "x".repeat(1024 * 1024);
      const { id } = await store.createRequest({
        func: utf8("f"),
        ns: patterned(1024 * 1024, 3),
        args: [utf8("small"), bigArg, utf8("small")],
      });
      expect(await store.putResult(id, 1, bigResult)).toBe(true);
      expect(await store.putError(id, 2, bigError)).toBe(true);
      const [arg] = await store.getArgs(id, 1);
      expect(arg?.byteLength).toBe(largeBytes);
      expect(asBuffer(arg as Uint8Array).equals(asBuffer(bigArg))).toBe(true);
      const results = await store.getResults(id);
      const result = results[1]?.result;
      expect(result?.byteLength).toBe(largeBytes);
      expect(asBuffer(result as Uint8Array).equals(asBuffer(bigResult))).toBe(true);
      expect(asBuffer(results[1]?.args as Uint8Array).equals(asBuffer(bigArg))).toBe(true);
      expect((await store.getErrors(id))[0]?.error).toBe(bigError);
      expect(
        asBuffer((await store.getRequest(id)).ns).equals(asBuffer(patterned(1024 * 1024, 3))),
      ).toBe(true);
    },
    heavyTimeout,
  );
}

/** A request of `manyTasks` tasks: counts, argument ranges, reports, results in order. */
function manyTasksTest(suite: StoreSuite, { manyTasks, heavyTimeout }: ScaleSizes): void {
  const { open } = suite;

  it(
    `holds a request of ${manyTasks} tasks`,
    async () => {
      const store = await open();
      const { id } = await store.createRequest({
        func: utf8("f"),
        ns: utf8("n"),
        args: manyArgs(manyTasks),
      });
      expect(await store.counts(id)).toEqual({ tasks: manyTasks, results: 0, errors: 0 });
      const last = manyTasks - 1;
      const middle = Math.floor(manyTasks / 2);
      expect((await store.getArgs(id, 0)).map(argIndex)).toEqual([0]);
      expect((await store.getArgs(id, last)).map(argIndex)).toEqual([last]);
      const range = await store.getArgs(id, middle, 1000);
      expect(range.map(argIndex)).toEqual(Array.from({ length: 1000 }, (_, i) => middle + i));
      await expectFailure(() => store.getArgs(id, manyTasks), "TASK_NOT_FOUND");

      expect(await store.putResult(id, last, utf8("last"))).toBe(true);
      expect(await store.putError(id, 0, "first")).toBe(true);
      expect(await store.counts(id)).toEqual({ tasks: manyTasks, results: 1, errors: 1 });

      const results = await store.getResults(id);
      expect(results).toHaveLength(manyTasks);
      let misplaced = 0;
      let withResult = 0;
      for (let i = 0; i < results.length; i += 1) {
        const row = results[i] as (typeof results)[number];
        if (row.index !== i || argIndex(row.args) !== i) misplaced += 1;
        if (row.result !== null) withResult += 1;
      }
      expect(misplaced).toBe(0);
      expect(withResult).toBe(1);
      expect(show(results[last]?.result ?? null)).toBe("last");
      expect((await store.getErrors(id)).map((e) => [e.index, argIndex(e.args), e.error])).toEqual([
        [0, 0, "first"],
      ]);
    },
    heavyTimeout,
  );
}

/** Bytes that differ at every offset, so that a shifted or truncated copy is noticed. */
function patterned(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 1) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** `count` arguments of 8 bytes: the index and a hash of it, which {@link argIndex} reads. */
function* manyArgs(count: number): Generator<Uint8Array> {
  for (let i = 0; i < count; i += 1) {
    const arg = new Uint8Array(8);
    const view = new DataView(arg.buffer);
    view.setUint32(0, i, true);
    view.setUint32(4, (i * 2654435761) >>> 0, true);
    yield arg;
  }
}

/** The index of an argument of {@link manyArgs}, or -1 if its bytes are not one. */
function argIndex(arg: Uint8Array): number {
  const view = new DataView(arg.buffer, arg.byteOffset, arg.byteLength);
  const index = view.getUint32(0, true);
  return arg.byteLength === 8 && view.getUint32(4, true) === (index * 2654435761) >>> 0
    ? index
    : -1;
}
