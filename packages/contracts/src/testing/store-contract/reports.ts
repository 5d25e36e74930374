import { describe, expect, it } from "vitest";
import { show, utf8 } from "./bytes.js";
import { expectFailure } from "./expect-failure.js";
import {
  getResultRangeTest,
  putReportsBatchTest,
  putReportsTests,
  resetTasksTest,
  watchReportsTest,
} from "./optional-methods.js";
import type { StoreSuite } from "./suite.js";

/**
 * The "reports" group: results and errors, the first report of a task winning (also under
 * concurrency), counts, unreported tasks, bad indices, then the optional methods.
 */
export function describeReports(suite: StoreSuite): void {
  describe("reports", () => {
    firstReportTests(suite);
    reportCountTests(suite);
    putReportsTests(suite);
    putReportsBatchTest(suite);
    getResultRangeTest(suite);
    resetTasksTest(suite);
    watchReportsTest(suite);
  });
}

/** Results and errors are stored, and the first report of a task wins, alone or in a race. */
function firstReportTests(suite: StoreSuite): void {
  const { open, create } = suite;

  it("stores results and errors, and counts them", async () => {
    const store = await open();
    const id = await create(store, 5);
    expect(await store.putResult(id, 0, utf8("r0"))).toBe(true);
    expect(await store.putResult(id, 3, utf8("r3"))).toBe(true);
    expect(await store.putError(id, 4, "Traceback: ValueError ✗")).toBe(true);
    expect(await store.counts(id)).toEqual({ tasks: 5, results: 2, errors: 1 });

    const results = await store.getResults(id);
    expect(results.map((r) => [r.index, show(r.args), show(r.result)])).toEqual([
      [0, "arg 0", "r0"],
      [1, "arg 1", null],
      [2, "arg 2", null],
      [3, "arg 3", "r3"],
      [4, "arg 4", null],
    ]);
    const errors = await store.getErrors(id);
    expect(errors.map((e) => [e.index, show(e.args), e.error])).toEqual([
      [4, "arg 4", "Traceback: ValueError ✗"],
    ]);
  });

  it("keeps the first report of a task: a later result or error is ignored", async () => {
    const store = await open();
    const id = await create(store, 3);
    expect(await store.putResult(id, 0, utf8("first"))).toBe(true);
    expect(await store.putResult(id, 0, utf8("second"))).toBe(false);
    expect(await store.putError(id, 0, "late error")).toBe(false);
    expect(await store.putError(id, 1, "first error")).toBe(true);
    expect(await store.putError(id, 1, "second error")).toBe(false);
    expect(await store.putResult(id, 1, utf8("late result"))).toBe(false);
    expect(await store.counts(id)).toEqual({ tasks: 3, results: 1, errors: 1 });
    expect((await store.getResults(id)).map((r) => show(r.result))).toEqual(["first", null, null]);
    expect((await store.getErrors(id)).map((e) => [e.index, e.error])).toEqual([
      [1, "first error"],
    ]);
  });

  it("keeps exactly one of many concurrent reports for one task", async () => {
    const store = await open();
    const id = await create(store, 2);
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, k) =>
        k % 3 === 0 ? store.putError(id, 1, `error ${k}`) : store.putResult(id, 1, utf8(`r${k}`)),
      ),
    );
    expect(outcomes.filter(Boolean)).toHaveLength(1);
    const winner = outcomes.indexOf(true);
    const counts = await store.counts(id);
    expect(counts.results + counts.errors).toBe(1);
    if (winner % 3 === 0) {
      expect((await store.getErrors(id)).map((e) => e.error)).toEqual([`error ${winner}`]);
      expect(counts.errors).toBe(1);
    } else {
      expect(show((await store.getResults(id))[1]?.result ?? null)).toBe(`r${winner}`);
      expect(counts.results).toBe(1);
    }
  });
}

/** Counts never pass the number of tasks; unreported tasks; indices outside the request. */
function reportCountTests(suite: StoreSuite): void {
  const { open, create } = suite;

  it("never counts past the number of tasks", async () => {
    const store = await open();
    const id = await create(store, 50);
    const reports: Promise<boolean>[] = [];
    for (let round = 0; round < 3; round += 1) {
      for (let i = 0; i < 50; i += 1) {
        reports.push(
          (i + round) % 2 === 0
            ? store.putResult(id, i, utf8(`r${round}`))
            : store.putError(id, i, `e${round}`),
        );
      }
    }
    const outcomes = await Promise.all(reports);
    expect(outcomes.filter(Boolean)).toHaveLength(50);
    const counts = await store.counts(id);
    expect(counts.tasks).toBe(50);
    expect(counts.results + counts.errors).toBe(50);
    expect(counts.results).toBe(25);
    expect((await store.getErrors(id)).length).toBe(25);
  });

  it("says which tasks of a range have no report yet", async () => {
    const store = await open();
    const id = await create(store, 6);
    expect(await store.unreported(id, 0, 6)).toEqual([0, 1, 2, 3, 4, 5]);
    await store.putResult(id, 1, utf8("r1"));
    await store.putError(id, 4, "e4");
    expect(await store.unreported(id, 0, 6)).toEqual([0, 2, 3, 5]);
    expect(await store.unreported(id, 1, 1)).toEqual([]);
    expect(await store.unreported(id, 3, 3)).toEqual([3, 5]);
    expect(await store.unreported(id, 2, 0)).toEqual([]);
    await expectFailure(() => store.unreported(id, 4, 3), "TASK_NOT_FOUND");
    await expectFailure(() => store.unreported(id, -1, 2), "TASK_NOT_FOUND");
  });

  it("answers TASK_NOT_FOUND for an index outside the request, and stores nothing", async () => {
    const store = await open();
    const id = await create(store, 3);
    for (const index of [-1, 3, 1000, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expectFailure(() => store.putResult(id, index, utf8("r")), "TASK_NOT_FOUND");
      await expectFailure(() => store.putError(id, index, "e"), "TASK_NOT_FOUND");
    }
    expect(await store.counts(id)).toEqual({ tasks: 3, results: 0, errors: 0 });
  });
}
