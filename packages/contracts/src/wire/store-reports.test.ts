import { describe, expect, it } from "vitest";
import type { Store, StoreReport } from "../store.js";
import { memoryStore } from "../testing/memory-store.js";
import { storeReports } from "./store-reports.js";

const utf8 = (text: string) => new TextEncoder().encode(text);

/** A memory store that counts the write calls it is given, with or without putReports. */
function countingStore(withBatch: boolean) {
  const store = memoryStore();
  const calls = { putReports: 0, putResult: 0, putError: 0 };
  const counted: Store = {
    ...store,
    putResult: (id, index, value) => {
      calls.putResult += 1;
      return store.putResult(id, index, value);
    },
    putError: (id, index, value) => {
      calls.putError += 1;
      return store.putError(id, index, value);
    },
    putReports: undefined,
  };
  const { putReports } = store;
  if (withBatch && putReports) {
    counted.putReports = (id, reports) => {
      calls.putReports += 1;
      return putReports.call(store, id, reports);
    };
  }
  return { store: counted, calls };
}

async function requestOf(store: Store, tasks: number): Promise<number> {
  const args = Array.from({ length: tasks }, () => utf8("a"));
  return (await store.createRequest({ func: utf8("f"), ns: new Uint8Array(), args })).id;
}

const batch: StoreReport[] = [
  { index: 0, kind: "result", value: utf8("r0") },
  { index: 1, kind: "error", value: "Traceback: e1" },
  { index: 2, kind: "result", value: utf8("r2") },
];

describe("storeReports", () => {
  for (const withBatch of [true, false]) {
    const how = withBatch ? "through putReports" : "one put at a time";
    it(`stores results and errors, first report winning (${how})`, async () => {
      const { store, calls } = countingStore(withBatch);
      const id = await requestOf(store, 3);
      expect(await store.putError(id, 2, "earlier")).toBe(true);
      expect(await storeReports(store, id, batch)).toEqual([true, true, false]);
      expect(calls.putReports).toBe(withBatch ? 1 : 0);
      expect(calls.putResult).toBe(withBatch ? 0 : 2);
      expect(calls.putError).toBe(withBatch ? 1 : 2);
      const results = await store.getResults(id);
      expect(results.map((r) => r.result && new TextDecoder().decode(r.result))).toEqual([
        "r0",
        null,
        null,
      ]);
      expect((await store.getErrors(id)).map((e) => e.error)).toEqual(["Traceback: e1", "earlier"]);
    });
  }

  it("writes a single report with putResult or putError even when putReports exists", async () => {
    const { store, calls } = countingStore(true);
    const id = await requestOf(store, 1);
    expect(await storeReports(store, id, [{ index: 0, kind: "result", value: utf8("r") }])).toEqual(
      [true],
    );
    expect(calls).toEqual({ putReports: 0, putResult: 1, putError: 0 });
    expect(await storeReports(store, id, [])).toEqual([]);
  });

  it("writes a single report with facts through putReports, which keeps them", async () => {
    const { store, calls } = countingStore(true);
    const id = await requestOf(store, 1);
    const report: StoreReport = {
      index: 0,
      kind: "result",
      value: utf8("r"),
      facts: { host: "n" },
    };
    expect(await storeReports(store, id, [report])).toEqual([true]);
    expect(calls).toEqual({ putReports: 1, putResult: 0, putError: 0 });
    expect(await store.getTaskFacts?.(id)).toEqual([{ kind: "result", host: "n", hasLog: false }]);
  });

  it("rejects as the store does", async () => {
    const { store } = countingStore(false);
    const error = await storeReports(store, 99, batch).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe("REQUEST_NOT_FOUND");
  });
});
