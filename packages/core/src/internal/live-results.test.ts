import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RequestId, Store, StoreReport } from "@sheepdog/contracts";
import { memoryStore } from "@sheepdog/contracts/testing";
import { encode } from "@sheepdog/serialise";
import { sqliteStore } from "@sheepdog/store-sqlite";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { collectResults, LiveResults } from "./result-check.js";

const bytes = (value: unknown) => encode(value, { protocol: 4 });

/** `store` with its ranged result reads counted: [start, count] of each. */
function countingReads(store: Store): { store: Store; reads: [number, number][] } {
  const reads: [number, number][] = [];
  const getResultRange = store.getResultRange?.bind(store);
  const counted: Store = Object.create(store, {
    getResultRange: {
      value: async (id: RequestId, start: number, count: number) => {
        reads.push([start, count]);
        return getResultRange?.(id, start, count);
      },
    },
  });
  return { store: counted, reads };
}

/** `store.putReports`, which every store here has. */
function putReports(store: Store, request: RequestId, reports: StoreReport[]): Promise<boolean[]> {
  if (!store.putReports) throw new Error("This store has no putReports.");
  return store.putReports(request, reports);
}

async function newRequest(store: Store, tasks: number): Promise<RequestId> {
  const args = Array.from({ length: tasks }, (_, i) => bytes([i]));
  return (await store.createRequest({ func: bytes("f"), ns: bytes({}), args })).id;
}

describe("LiveResults: a map's results taken in as its store writes them", () => {
  let dir: string;
  let store: Store;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "sheepdog-live-"));
    store = sqliteStore({ dbfile: join(dir, "live.sqlite") });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("reads back only the tasks it did not see stored", async () => {
    const request = await newRequest(store, 10);
    const other = await newRequest(store, 10);
    const live = new LiveResults(store, request, 10, 64);
    await putReports(store, request, [
      { index: 0, kind: "result", value: bytes(100) },
      { index: 1, kind: "result", value: bytes(101) },
      { index: 2, kind: "error", value: "Traceback: no" },
      // Larger than the 64 bytes decoded as they come: left to the end.
      { index: 3, kind: "result", value: bytes("x".repeat(100)) },
      { index: 5, kind: "result", value: bytes(105) },
    ]);
    await putReports(store, other, [{ index: 4, kind: "result", value: bytes(-1) }]);
    // A second report of a task is not stored, so it is not taken either.
    await putReports(store, request, [{ index: 1, kind: "result", value: bytes(-1) }]);
    // Stored by another store on the same file (another process): this one never hears of it.
    const elsewhere = sqliteStore({ dbfile: join(dir, "live.sqlite") });
    await putReports(elsewhere, request, [{ index: 9, kind: "result", value: bytes(109) }]);
    await elsewhere.close();

    const counting = countingReads(store);
    const { values, undecodable } = await collectResults(counting.store, request, 10, live);
    expect(values).toEqual([100, 101, null, "x".repeat(100), null, 105, null, null, null, 109]);
    expect(undecodable.size).toBe(0);
    // Task 2 has an error, 3 a large result, 4 nothing yet: one run; then 6 to 9.
    expect(counting.reads).toEqual([
      [2, 3],
      [6, 4],
    ]);
  });

  it("takes nothing in once stopped, and reads everything it did not take", async () => {
    const request = await newRequest(store, 3);
    const live = new LiveResults(store, request, 3, 1024);
    await putReports(store, request, [{ index: 0, kind: "result", value: bytes("a") }]);
    expect(live.stop()).toEqual(["a", null, null]);
    await putReports(store, request, [{ index: 1, kind: "result", value: bytes("b") }]);
    expect(live.unseenRuns()).toEqual([{ first: 1, count: 2 }]);
  });

  it("keeps a stored result that does not decode as its error, read back at the end", async () => {
    const request = await newRequest(store, 2);
    const live = new LiveResults(store, request, 2, 1024);
    const garbled = new Uint8Array([0x80, 0x04, 0xff]);
    await putReports(store, request, [
      { index: 0, kind: "result", value: garbled },
      { index: 1, kind: "result", value: bytes(1) },
    ]);
    const counting = countingReads(store);
    const { values, undecodable } = await collectResults(counting.store, request, 2, live);
    expect(values).toEqual([null, 1]);
    expect(undecodable.get(0)).toMatch(/cannot decode/);
    expect(counting.reads).toEqual([[0, 1]]);
  });

  it("reads every task from a store that does not tell what it writes", async () => {
    const memory = memoryStore();
    const silent: Store = Object.create(memory, { watchReports: { value: undefined } });
    const request = await newRequest(memory, 2);
    const live = new LiveResults(silent, request, 2, 1024);
    await putReports(memory, request, [{ index: 0, kind: "result", value: bytes(7) }]);
    expect(live.unseenRuns()).toEqual([{ first: 0, count: 2 }]);
    const { values } = await collectResults(silent, request, 2, live);
    expect(values).toEqual([7, null]);
    await memory.close();
  });
});
