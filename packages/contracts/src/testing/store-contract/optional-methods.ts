import { expect, it } from "vitest";
import type { StoreReport } from "../../store.js";
import { show, utf8 } from "./bytes.js";
import { expectFailure } from "./expect-failure.js";
import type { StoreSuite } from "./suite.js";

// The tests of the optional Store methods, each skipped when the store does not have it.

/** putReports: a batch with first report winning, a bad batch stored not at all, a fair race. */
export function putReportsTests(suite: StoreSuite): void {
  const { open, create } = suite;

  it("putReports (optional) stores a batch, first report winning within it", async (t) => {
    const store = await open();
    if (!store.putReports) {
      t.skip("this store has no putReports (an optional method)");
      return;
    }
    const id = await create(store, 4);
    expect(await store.putResult(id, 0, utf8("earlier"))).toBe(true);
    const batch: StoreReport[] = [
      { index: 0, kind: "result", value: utf8("too late") },
      { index: 1, kind: "result", value: utf8("r1") },
      { index: 2, kind: "error", value: "e2" },
      { index: 1, kind: "error", value: "duplicate in batch" },
      { index: 3, kind: "result", value: utf8("r3") },
    ];
    expect(await store.putReports(id, batch)).toEqual([false, true, true, false, true]);
    expect(await store.putReports(id, [])).toEqual([]);
    expect(await store.counts(id)).toEqual({ tasks: 4, results: 3, errors: 1 });
    expect((await store.getResults(id)).map((r) => show(r.result))).toEqual([
      "earlier",
      "r1",
      null,
      "r3",
    ]);
    expect((await store.getErrors(id)).map((e) => [e.index, e.error])).toEqual([[2, "e2"]]);
  });

  it("putReports (optional) rejects a batch with a bad index and stores none of it", async (t) => {
    const store = await open();
    if (!store.putReports) {
      t.skip("this store has no putReports (an optional method)");
      return;
    }
    const id = await create(store, 3);
    const { putReports } = store;
    await expectFailure(
      () =>
        putReports.call(store, id, [
          { index: 0, kind: "result", value: utf8("r0") },
          { index: 3, kind: "result", value: utf8("r3") },
        ]),
      "TASK_NOT_FOUND",
    );
    await expectFailure(
      () =>
        putReports.call(store, id, [
          { index: 1, kind: "error", value: "e1" },
          { index: -1, kind: "error", value: "e" },
        ]),
      "TASK_NOT_FOUND",
    );
    expect(await store.counts(id)).toEqual({ tasks: 3, results: 0, errors: 0 });
    expect(await store.putResult(id, 0, utf8("r0"))).toBe(true);
  });

  it("putReports (optional) races putResult fairly: one report per task", async (t) => {
    const store = await open();
    if (!store.putReports) {
      t.skip("this store has no putReports (an optional method)");
      return;
    }
    const id = await create(store, 100);
    const batch: StoreReport[] = Array.from({ length: 100 }, (_, i) => ({
      index: i,
      kind: "result",
      value: utf8(`batch ${i}`),
    }));
    const [single, batched] = await Promise.all([
      Promise.all(Array.from({ length: 100 }, (_, i) => store.putError(id, i, `single ${i}`))),
      store.putReports(id, batch),
    ]);
    for (let i = 0; i < 100; i += 1) expect(Number(single[i]) + Number(batched[i])).toBe(1);
    const counts = await store.counts(id);
    expect(counts.results).toBe(batched.filter(Boolean).length);
    expect(counts.errors).toBe(single.filter(Boolean).length);
  });
}

/** getResultRange: what getResults says of a range, without the arguments. */
export function getResultRangeTest(suite: StoreSuite): void {
  const { open, create } = suite;

  it("getResultRange (optional) says what getResults says of a range, without args", async (t) => {
    const store = await open();
    if (!store.getResultRange) {
      t.skip("this store has no getResultRange (an optional method)");
      return;
    }
    const { getResultRange } = store;
    const range = (id: number, start: number, count: number) =>
      getResultRange.call(store, id, start, count);
    const id = await create(store, 50);
    for (let i = 0; i < 50; i++) {
      if (i % 5 === 0) continue;
      if (i % 7 === 0) await store.putError(id, i, `e${i}`);
      else await store.putResult(id, i, utf8(`r${i}`));
    }
    const all = (await store.getResults(id)).map((r) => show(r.result));
    expect((await range(id, 0, 50)).map(show)).toEqual(all);
    expect((await range(id, 13, 20)).map(show)).toEqual(all.slice(13, 33));
    expect((await range(id, 49, 1)).map(show)).toEqual([all[49]]);
    expect(await range(id, 50, 0)).toEqual([]);
    await expectFailure(() => range(id, 45, 6), "TASK_NOT_FOUND");
    await expectFailure(() => range(id, -1, 2), "TASK_NOT_FOUND");
    await expectFailure(() => range(id + 1000, 0, 1), "REQUEST_NOT_FOUND");
  });
}

/** resetTasks: reports forgotten, so that the tasks can report again. */
export function resetTasksTest(suite: StoreSuite): void {
  const { open, create } = suite;

  it("resetTasks (optional) forgets reports so that tasks can report again", async (t) => {
    const store = await open();
    if (!store.resetTasks) {
      t.skip("this store has no resetTasks (an optional method)");
      return;
    }
    const id = await create(store, 4);
    await store.putResult(id, 0, utf8("r0"));
    await store.putError(id, 1, "e1");
    await store.putResult(id, 2, utf8("r2"));
    await store.resetTasks(id, [0, 1, 3]);
    expect(await store.counts(id)).toEqual({ tasks: 4, results: 1, errors: 0 });
    expect(await store.getErrors(id)).toEqual([]);
    expect((await store.getResults(id)).map((r) => show(r.result))).toEqual([
      null,
      null,
      "r2",
      null,
    ]);
    expect(await store.putError(id, 0, "e0 again")).toBe(true);
    expect(await store.putResult(id, 1, utf8("r1 again"))).toBe(true);
    expect(await store.putResult(id, 2, utf8("not again"))).toBe(false);
    expect(await store.counts(id)).toEqual({ tasks: 4, results: 2, errors: 1 });
    const { resetTasks } = store;
    await expectFailure(() => resetTasks.call(store, id, [1, 4]), "TASK_NOT_FOUND");
    expect(await store.counts(id)).toEqual({ tasks: 4, results: 2, errors: 1 });
  });
}

/** watchReports: each stored report told once, with its facts; none that was not stored. */
export function watchReportsTest(suite: StoreSuite): void {
  const { open, create } = suite;

  it("watchReports (optional) tells each stored report once, and nothing once stopped", async (t) => {
    const store = await open();
    if (!store.watchReports) {
      t.skip("this store has no watchReports (an optional method)");
      return;
    }
    const id = await create(store, 4);
    const other = await create(store, 1);
    const told: string[] = [];
    const stop = store.watchReports((request, reports) => {
      for (const report of reports) {
        const facts = report.facts ? ` on ${report.facts.host}` : "";
        told.push(`${request}#${report.index} ${report.kind}${facts}`);
      }
    });
    expect(await store.putResult(id, 0, utf8("r0"))).toBe(true);
    expect(await store.putResult(id, 0, utf8("again"))).toBe(false);
    expect(await store.putError(id, 1, "e1", { provisional: true })).toBe(true);
    if (store.putReports) {
      const facts = { host: "node7", startedAt: 1, endedAt: 2 };
      const stored = await store.putReports(id, [
        { index: 1, kind: "result", value: utf8("r1"), facts },
        { index: 2, kind: "error", value: "e2", facts },
        { index: 2, kind: "result", value: utf8("late in its batch") },
      ]);
      expect(stored).toEqual([true, true, false]);
    } else {
      await store.putResult(id, 1, utf8("r1"));
      await store.putError(id, 2, "e2");
    }
    await store.putResult(other, 0, utf8("o0"));
    stop();
    await store.putResult(id, 3, utf8("r3"));
    const host = store.putReports ? " on node7" : "";
    expect(told).toEqual([
      `${id}#0 result`,
      `${id}#1 error`,
      `${id}#1 result${host}`,
      `${id}#2 error${host}`,
      `${other}#0 result`,
    ]);
  });
}

/** putReports in batches larger than a store's own statements: the same rules throughout. */
export function putReportsBatchTest(suite: StoreSuite): void {
  const { open, create } = suite;

  it("putReports (optional) keeps the rules in a batch of hundreds: first wins, provisional gives way", async (t) => {
    const store = await open();
    if (!store.putReports) {
      t.skip("this store has no putReports (an optional method)");
      return;
    }
    const id = await create(store, 300);
    await store.putError(id, 7, "inferred", { provisional: true });
    await store.putError(id, 8, "inferred", { provisional: true });
    await store.putResult(id, 9, utf8("earlier"));
    const facts = (index: number) => ({ host: `n${index}`, startedAt: index, endedAt: index + 1 });
    const batch: StoreReport[] = Array.from({ length: 250 }, (_, index) => ({
      index,
      kind: "result" as const,
      value: utf8(`r${index}`),
      facts: facts(index),
    }));
    batch[8] = { index: 8, kind: "error", value: "real error" };
    batch[20] = { index: 5, kind: "error", value: "second report of task 5", facts: facts(99) };
    batch[120] = { index: 7, kind: "result", value: utf8("late for 7") };
    const stored = await store.putReports(id, batch);
    const refused = stored.flatMap((ok, at) => (ok ? [] : [at]));
    expect(refused).toEqual([9, 20, 120]);
    expect(await store.counts(id)).toEqual({ tasks: 300, results: 247, errors: 1 });
    const errors = await store.getErrors(id);
    expect(errors.map((e) => [e.index, e.error, e.provisional ?? false])).toEqual([
      [8, "real error", false],
    ]);
    const results = await store.getResults(id);
    expect([5, 7, 9, 20, 249, 250].map((i) => show(results[i]?.result ?? null))).toEqual([
      "r5",
      "r7",
      "earlier",
      null,
      "r249",
      null,
    ]);
    if (store.getTaskFacts) {
      const entries = await store.getTaskFacts(id, 0, 10);
      expect(entries[5]).toMatchObject({ host: "n5" });
      expect(entries[7]).toMatchObject({ kind: "result", host: "n7" });
      expect(entries[8]).toEqual({ kind: "error", hasLog: false });
      expect(entries[9]).toEqual({ kind: "result", hasLog: false });
    }
  });
}
