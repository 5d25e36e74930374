import { describe, expect, it } from "vitest";
import { show, utf8 } from "./bytes.js";
import type { StoreSuite } from "./suite.js";

/**
 * The "provisional errors" group: an error inferred by the caller (the scheduler says a task
 * ended without reporting) counts as an error until a real report of the task replaces it; a
 * real report is never replaced.
 */
export function describeProvisional(suite: StoreSuite): void {
  describe("provisional errors", () => {
    countingTests(suite);
    replacingTests(suite);
    batchTests(suite);
  });
}

/** A provisional error counts and reads as an error, and as a report for unreported. */
function countingTests(suite: StoreSuite): void {
  const { open, create } = suite;

  it("counts a provisional error as an error, marked provisional in getErrors", async () => {
    const store = await open();
    const id = await create(store, 3);
    expect(await store.putError(id, 1, "died", { provisional: true })).toBe(true);
    expect(await store.putError(id, 2, "Traceback: real")).toBe(true);
    expect(await store.counts(id)).toEqual({ tasks: 3, results: 0, errors: 2 });
    expect(await store.unreported(id, 0, 3)).toEqual([0]);
    const errors = await store.getErrors(id);
    expect(errors.map((e) => [e.index, show(e.args), e.error, e.provisional])).toEqual([
      [1, "arg 1", "died", true],
      [2, "arg 2", "Traceback: real", undefined],
    ]);
    expect(await store.putError(id, 0, "not provisional", { provisional: false })).toBe(true);
    expect((await store.getErrors(id))[0]?.provisional).toBeUndefined();
  });

  it("never lets a provisional error replace a report, provisional or not", async () => {
    const store = await open();
    const id = await create(store, 3);
    await store.putResult(id, 0, utf8("r0"));
    await store.putError(id, 1, "Traceback: real");
    await store.putError(id, 2, "first death", { provisional: true });
    expect(await store.putError(id, 0, "died", { provisional: true })).toBe(false);
    expect(await store.putError(id, 1, "died", { provisional: true })).toBe(false);
    expect(await store.putError(id, 2, "second death", { provisional: true })).toBe(false);
    expect(await store.counts(id)).toEqual({ tasks: 3, results: 1, errors: 2 });
    expect((await store.getErrors(id)).map((e) => [e.index, e.error])).toEqual([
      [1, "Traceback: real"],
      [2, "first death"],
    ]);
  });
}

/** A real report replaces a provisional error once, and is then final; so does a reopen. */
function replacingTests(suite: StoreSuite): void {
  const { open, create } = suite;

  it("lets a real result or error replace a provisional error, once", async () => {
    const store = await open();
    const id = await create(store, 3);
    for (const index of [0, 1, 2]) await store.putError(id, index, "died", { provisional: true });
    expect(await store.putResult(id, 0, utf8("recovered"))).toBe(true);
    expect(await store.putError(id, 1, "Traceback: the real cause")).toBe(true);
    expect(await store.counts(id)).toEqual({ tasks: 3, results: 1, errors: 2 });
    expect(await store.putResult(id, 0, utf8("again"))).toBe(false);
    expect(await store.putResult(id, 1, utf8("late"))).toBe(false);
    expect(await store.putError(id, 0, "late error")).toBe(false);
    expect((await store.getResults(id)).map((r) => show(r.result))).toEqual([
      "recovered",
      null,
      null,
    ]);
    const errors = await store.getErrors(id);
    expect(errors.map((e) => [e.index, e.error, e.provisional])).toEqual([
      [1, "Traceback: the real cause", undefined],
      [2, "died", true],
    ]);
    expect(await store.unreported(id, 0, 3)).toEqual([]);
  });

  it("keeps an error provisional when the store is opened again", async () => {
    const first = await open();
    const id = await create(first, 2);
    await first.putError(id, 0, "died", { provisional: true });
    await first.close();
    const second = await open();
    expect((await second.getErrors(id)).map((e) => e.provisional)).toEqual([true]);
    expect(await second.putResult(id, 0, utf8("recovered"))).toBe(true);
    expect(await second.counts(id)).toEqual({ tasks: 2, results: 1, errors: 0 });
  });

  it("lets exactly one of many concurrent real reports replace a provisional error", async () => {
    const store = await open();
    const id = await create(store, 1);
    await store.putError(id, 0, "died", { provisional: true });
    const outcomes = await Promise.all(
      Array.from({ length: 12 }, (_, k) =>
        k % 4 === 0
          ? store.putError(id, 0, k % 8 === 0 ? `death ${k}` : `error ${k}`, {
              provisional: k % 8 === 0,
            })
          : store.putResult(id, 0, utf8(`r${k}`)),
      ),
    );
    expect(outcomes.filter(Boolean)).toHaveLength(1);
    const winner = outcomes.indexOf(true);
    expect(winner % 8).not.toBe(0);
    const counts = await store.counts(id);
    expect(counts.results + counts.errors).toBe(1);
    expect(counts.results).toBe(winner % 4 === 0 ? 0 : 1);
    expect((await store.getErrors(id)).every((e) => e.provisional === undefined)).toBe(true);
  });
}

/** putReports honours provisional errors in a batch, and lets a batch replace them. */
function batchTests(suite: StoreSuite): void {
  const { open, create } = suite;

  it("putReports (optional) replaces provisional errors, and stores provisional ones", async (t) => {
    const store = await open();
    if (!store.putReports) {
      t.skip("this store has no putReports (an optional method)");
      return;
    }
    const id = await create(store, 4);
    await store.putError(id, 0, "died", { provisional: true });
    await store.putError(id, 1, "died", { provisional: true });
    await store.putResult(id, 2, utf8("r2"));
    const stored = await store.putReports(id, [
      { index: 0, kind: "result", value: utf8("recovered") },
      { index: 1, kind: "error", value: "Traceback: real" },
      { index: 2, kind: "error", value: "death", provisional: true },
      { index: 3, kind: "error", value: "death", provisional: true },
      { index: 3, kind: "result", value: utf8("r3 after its death") },
    ]);
    expect(stored).toEqual([true, true, false, true, true]);
    expect(await store.counts(id)).toEqual({ tasks: 4, results: 3, errors: 1 });
    expect((await store.getResults(id)).map((r) => show(r.result))).toEqual([
      "recovered",
      null,
      "r2",
      "r3 after its death",
    ]);
    expect((await store.getErrors(id)).map((e) => [e.index, e.error, e.provisional])).toEqual([
      [1, "Traceback: real", undefined],
    ]);
  });

  it("resetTasks (optional) forgets a provisional error like any other", async (t) => {
    const store = await open();
    if (!store.resetTasks) {
      t.skip("this store has no resetTasks (an optional method)");
      return;
    }
    const id = await create(store, 2);
    await store.putError(id, 0, "died", { provisional: true });
    await store.resetTasks(id, [0]);
    expect(await store.counts(id)).toEqual({ tasks: 2, results: 0, errors: 0 });
    expect(await store.unreported(id, 0, 2)).toEqual([0, 1]);
    expect(await store.putError(id, 0, "Traceback: real")).toBe(true);
    expect(await store.putError(id, 0, "died again", { provisional: true })).toBe(false);
  });
}
