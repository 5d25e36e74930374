import { describe, expect, it } from "vitest";
import type { Store, StoreReport, TaskFacts, TaskFactsEntry } from "../../store.js";
import { logCutMark, MAX_HOST_LENGTH, MAX_LOG_BYTES } from "../../store.js";
import { show, utf8 } from "./bytes.js";
import { expectFailure } from "./expect-failure.js";
import type { StoreSuite } from "./suite.js";

/** The sizes of the "facts" group. */
export interface FactsSizes {
  /** How many tasks report facts in the large test. */
  tasks: number;
  heavyTimeout: number;
}

/** A store with the optional methods that keep and read facts. */
type FactsStore = Store & Required<Pick<Store, "putReports" | "getTaskFacts" | "getLogs">>;

/** The store, or undefined (and the test skipped) when it keeps no facts. */
function factsStore(store: Store, skip: (note: string) => void): FactsStore | undefined {
  if (store.putReports && store.getTaskFacts && store.getLogs) return store as FactsStore;
  skip("this store has no getTaskFacts and getLogs (optional methods)");
  return undefined;
}

/** Every fact, at the edges of their bounds. */
const allFacts: TaskFacts = {
  startedAt: 1_700_000_000_123.25,
  endedAt: 1_700_000_001_000.5,
  host: "node-7.cluster ✓",
  peakMemoryBytes: Number.MAX_SAFE_INTEGER,
  attempt: 3,
  log: "hello\nworld ✓\n",
};

/** The facts of a report that a test expects to lose to, or give way to, another. */
const other: TaskFacts = { host: "other", startedAt: 1, endedAt: 2, log: "other log" };

/** `allFacts` as getTaskFacts says them. */
const allFactsEntry = (kind: "result" | "error"): TaskFactsEntry => {
  const { log: _, ...facts } = allFacts;
  return { kind, ...facts, hasLog: true };
};

/**
 * The "facts" group: what workers tell of each call (times, host, memory, attempt, log) stored
 * with its report by putReports, sharing its fate (first report wins, a real report replaces a
 * provisional error's, a reset forgets them), and read by getTaskFacts and getLogs. Each test is
 * skipped when the store has no getTaskFacts and getLogs.
 */
export function describeFacts(suite: StoreSuite, sizes: FactsSizes): void {
  describe("facts", () => {
    roundTripTests(suite);
    fateTests(suite);
    largePostTest(suite);
    checkTests(suite);
    manyFactsTest(suite, sizes);
  });
}

/** Facts and logs come back as they went in, by range; reports without facts have none. */
function roundTripTests(suite: StoreSuite): void {
  const { open, create } = suite;

  it("getTaskFacts (optional) reads each report's kind and facts, by range", async (t) => {
    const store = factsStore(await open(), (note) => t.skip(note));
    if (!store) return;
    const id = await create(store, 6);
    expect(
      await store.putReports(id, [
        { index: 0, kind: "result", value: utf8("r0"), facts: allFacts },
        { index: 1, kind: "error", value: "e1", facts: { host: "n2", startedAt: 0 } },
        { index: 2, kind: "result", value: utf8("r2") },
        { index: 4, kind: "error", value: "e4", facts: {} },
      ]),
    ).toEqual([true, true, true, true]);
    await store.putResult(id, 5, utf8("r5"));
    const expected = [
      allFactsEntry("result"),
      { kind: "error", host: "n2", startedAt: 0, hasLog: false },
      { kind: "result", hasLog: false },
      null,
      { kind: "error", hasLog: false },
      { kind: "result", hasLog: false },
    ];
    expect(await store.getTaskFacts(id)).toStrictEqual(expected);
    expect(await store.getTaskFacts(id, 0, 6)).toStrictEqual(expected);
    expect(await store.getTaskFacts(id, 1, 3)).toStrictEqual(expected.slice(1, 4));
    expect(await store.getTaskFacts(id, 4)).toStrictEqual(expected.slice(4));
    expect(await store.getTaskFacts(id, 6, 0)).toEqual([]);
    expect(await store.getTaskFacts(await create(store, 0))).toEqual([]);
    const { getTaskFacts } = store;
    const facts = (...range: number[]) => getTaskFacts.call(store, id, ...range);
    await expectFailure(() => facts(4, 3), "TASK_NOT_FOUND");
    await expectFailure(() => facts(-1, 2), "TASK_NOT_FOUND");
    await expectFailure(() => facts(7), "TASK_NOT_FOUND");
    await expectFailure(() => getTaskFacts.call(store, id + 1000), "REQUEST_NOT_FOUND");
  });

  it("getLogs (optional) reads the logs of a range whole, up to MAX_LOG_BYTES of any text", async (t) => {
    const store = factsStore(await open(), (note) => t.skip(note));
    if (!store) return;
    const id = await create(store, 5);
    const full = fullLog();
    expect(utf8(full).byteLength).toBe(MAX_LOG_BYTES);
    const logs = ["", full, undefined, "a NUL \u0000 and a\r\nnew line", "x"];
    await store.putReports(
      id,
      logs.map((log, index) => ({
        index,
        kind: "result",
        value: utf8(`r${index}`),
        ...(log !== undefined && { facts: { log } }),
      })),
    );
    const present = logs.flatMap((log, index) => (log === undefined ? [] : [{ index, log }]));
    expect(await store.getLogs(id)).toStrictEqual(present);
    expect(await store.getLogs(id, 1, 3)).toStrictEqual(present.slice(1, 3));
    expect(await store.getLogs(id, 2, 1)).toEqual([]);
    expect(await store.getLogs(id, 4)).toStrictEqual([{ index: 4, log: "x" }]);
    expect((await store.getTaskFacts(id)).map((entry) => entry?.hasLog)).toEqual([
      true,
      true,
      false,
      true,
      true,
    ]);
    const { getLogs } = store;
    await expectFailure(() => getLogs.call(store, id, 3, 3), "TASK_NOT_FOUND");
    await expectFailure(() => getLogs.call(store, id + 1000), "REQUEST_NOT_FOUND");
  });

  it("keeps facts and logs across close and reopen; reads of them after close are CLOSED", async (t) => {
    const first = factsStore(await open(), (note) => t.skip(note));
    if (!first) return;
    const id = await create(first, 2);
    await first.putReports(id, [{ index: 1, kind: "result", value: utf8("r1"), facts: allFacts }]);
    await first.close();
    await expectFailure(() => first.getTaskFacts(id), "CLOSED");
    await expectFailure(() => first.getLogs(id), "CLOSED");
    const second = (await open()) as FactsStore;
    expect(await second.getTaskFacts(id)).toStrictEqual([null, allFactsEntry("result")]);
    expect(await second.getLogs(id)).toStrictEqual([{ index: 1, log: allFacts.log }]);
  });
}

/** A log of exactly MAX_LOG_BYTES UTF-8 bytes, with characters of 1 to 4 bytes, after a cut mark. */
function fullLog(): string {
  const mark = logCutMark(123_456);
  const pieces = ["a", "é", "✓", "🐑", "\n"];
  const parts = [mark];
  let size = utf8(mark).byteLength;
  for (let i = 0; size + 4 <= MAX_LOG_BYTES; i++) {
    const piece = pieces[i % pieces.length] as string;
    parts.push(piece);
    size += utf8(piece).byteLength;
  }
  parts.push("z".repeat(MAX_LOG_BYTES - size));
  return parts.join("");
}

/** Facts share their report's fate: first report wins, provisional errors give way, resets forget. */
function fateTests(suite: StoreSuite): void {
  const { open, create } = suite;

  it("keeps the facts of a task's first report: a duplicate's change nothing", async (t) => {
    const store = factsStore(await open(), (note) => t.skip(note));
    if (!store) return;
    const id = await create(store, 3);
    expect(
      await store.putReports(id, [
        { index: 0, kind: "result", value: utf8("r0"), facts: allFacts },
        { index: 0, kind: "error", value: "e0", facts: other },
      ]),
    ).toEqual([true, false]);
    await store.putResult(id, 1, utf8("r1"));
    await store.putReports(id, [{ index: 2, kind: "error", value: "e2" }]);
    const later: StoreReport[] = [0, 1, 2].map((index) => ({
      index,
      kind: "result",
      value: utf8("late"),
      facts: other,
    }));
    expect(await store.putReports(id, later)).toEqual([false, false, false]);
    expect(await store.getTaskFacts(id)).toStrictEqual([
      allFactsEntry("result"),
      { kind: "result", hasLog: false },
      { kind: "error", hasLog: false },
    ]);
    expect(await store.getLogs(id)).toStrictEqual([{ index: 0, log: allFacts.log }]);
  });

  it("gives a real report's facts (or none) to a task whose provisional error it replaces", async (t) => {
    const store = factsStore(await open(), (note) => t.skip(note));
    if (!store) return;
    const id = await create(store, 3);
    const died: StoreReport[] = [0, 1, 2].map((index) => ({
      index,
      kind: "error",
      value: "died",
      provisional: true,
      facts: other,
    }));
    expect(await store.putReports(id, died)).toEqual([true, true, true]);
    expect((await store.getTaskFacts(id, 0, 1))[0]).toStrictEqual({
      kind: "error",
      provisional: true,
      host: "other",
      startedAt: 1,
      endedAt: 2,
      hasLog: true,
    });
    expect(
      await store.putReports(id, [
        { index: 0, kind: "result", value: utf8("r0"), facts: allFacts },
        { index: 1, kind: "error", value: "Traceback: real", facts: { attempt: 2 } },
      ]),
    ).toEqual([true, true]);
    expect(await store.putResult(id, 2, utf8("r2"))).toBe(true);
    expect(await store.getTaskFacts(id)).toStrictEqual([
      allFactsEntry("result"),
      { kind: "error", attempt: 2, hasLog: false },
      { kind: "result", hasLog: false },
    ]);
    expect(await store.getLogs(id)).toStrictEqual([{ index: 0, log: allFacts.log }]);
  });

  it("resetTasks (optional) forgets the facts and logs of the tasks it resets", async (t) => {
    const store = factsStore(await open(), (note) => t.skip(note));
    if (!store?.resetTasks) {
      if (store) t.skip("this store has no resetTasks (an optional method)");
      return;
    }
    const id = await create(store, 2);
    const both: StoreReport[] = [0, 1].map((index) => ({
      index,
      kind: "result",
      value: utf8(`r${index}`),
      facts: allFacts,
    }));
    await store.putReports(id, both);
    await store.resetTasks(id, [0]);
    expect(await store.getTaskFacts(id)).toStrictEqual([null, allFactsEntry("result")]);
    expect(await store.getLogs(id)).toStrictEqual([{ index: 1, log: allFacts.log }]);
    await store.putReports(id, [{ index: 0, kind: "error", value: "e0", facts: other }]);
    expect((await store.getLogs(id)).map((entry) => entry.log)).toEqual([
      "other log",
      allFacts.log,
    ]);
    await store.resetTasks(id, [0]);
    await store.putResult(id, 0, utf8("again"));
    expect((await store.getTaskFacts(id, 0, 1))[0]).toStrictEqual({
      kind: "result",
      hasLog: false,
    });
  });
}

/** Facts of the wrong type or out of bounds are refused, and nothing of their batch is stored. */
function checkTests(suite: StoreSuite): void {
  const { open, create } = suite;

  it("putReports (optional) refuses facts that are not TaskFacts, storing none of the batch", async (t) => {
    const store = factsStore(await open(), (note) => t.skip(note));
    if (!store) return;
    const id = await create(store, 2);
    const bad: unknown[] = [
      "facts",
      null,
      [],
      { startedAt: -1 },
      { endedAt: Number.NaN },
      { startedAt: "1700000000000" },
      { host: 3 },
      { host: "" },
      { host: "node\u0000" },
      { host: "h".repeat(MAX_HOST_LENGTH + 1) },
      { peakMemoryBytes: 1.5 },
      { peakMemoryBytes: 2 ** 53 },
      { attempt: 0 },
      { log: 5 },
    ];
    for (const facts of bad) {
      const batch = [
        { index: 0, kind: "result", value: utf8("r0") },
        { index: 1, kind: "result", value: utf8("r1"), facts },
      ] as StoreReport[];
      await expectFailure(() => store.putReports(id, batch), "INVALID_INPUT");
    }
    expect(await store.counts(id)).toEqual({ tasks: 2, results: 0, errors: 0 });
    const edge = {
      host: "h".repeat(MAX_HOST_LENGTH),
      startedAt: 0,
      peakMemoryBytes: 0,
      attempt: 1,
    };
    expect(
      await store.putReports(id, [{ index: 0, kind: "result", value: utf8("r0"), facts: edge }]),
    ).toEqual([true]);
    expect((await store.getTaskFacts(id, 0, 1))[0]).toStrictEqual({
      kind: "result",
      ...edge,
      hasLog: false,
    });
  });
}

/** Many tasks' facts are written in batches and read back at once. */
function manyFactsTest(suite: StoreSuite, { tasks, heavyTimeout }: FactsSizes): void {
  const { open, create } = suite;

  it(
    `reads the facts of ${tasks} tasks at once`,
    async (t) => {
      const store = factsStore(await open(), (note) => t.skip(note));
      if (!store) return;
      const id = await create(store, tasks);
      const batch = 10_000;
      for (let from = 0; from < tasks; from += batch) {
        const reports: StoreReport[] = [];
        for (let index = from; index < Math.min(from + batch, tasks); index++) {
          reports.push({ index, kind: "result", value: utf8(`r${index}`), facts: factsOf(index) });
        }
        await store.putReports(id, reports);
      }
      const entries = await store.getTaskFacts(id);
      expect(entries).toHaveLength(tasks);
      let wrong = 0;
      for (let index = 0; index < tasks; index++) {
        const { log, ...facts } = factsOf(index);
        const expected = { kind: "result", ...facts, hasLog: log !== undefined };
        const entry = entries[index] as TaskFactsEntry;
        const same =
          entry.kind === expected.kind &&
          entry.startedAt === expected.startedAt &&
          entry.endedAt === expected.endedAt &&
          entry.host === expected.host &&
          entry.peakMemoryBytes === expected.peakMemoryBytes &&
          entry.hasLog === expected.hasLog;
        if (!same) wrong += 1;
      }
      expect(wrong).toBe(0);
      const logs = await store.getLogs(id);
      expect(logs.map((entry) => entry.index)).toEqual(
        Array.from({ length: Math.ceil(tasks / 1000) }, (_, i) => i * 1000),
      );
      expect(logs[1]?.log ?? "").toBe(tasks > 1000 ? "log of 1000\n" : "");
    },
    heavyTimeout,
  );
}

/** The facts of task `index` in the large test: a log on every thousandth. */
function factsOf(index: number): TaskFacts {
  return {
    startedAt: 1_700_000_000_000 + index,
    endedAt: 1_700_000_000_000 + index * 1.5,
    host: `node-${index % 16}`,
    peakMemoryBytes: 1_000_000 + index,
    ...(index % 1000 === 0 && { log: `log of ${index}\n` }),
  };
}

/**
 * A post of hundreds of reports (earlier results, provisional errors replaced within the post,
 * duplicates near and far, facts and logs) is stored as the same reports one at a time: a store
 * may write a post in blocks, but not change what it says.
 */
function largePostTest(suite: StoreSuite): void {
  const { open, create } = suite;

  it("stores a post of hundreds of mixed reports as it stores them one at a time", async (t) => {
    const store = factsStore(await open(), (note) => t.skip(note));
    if (!store) return;
    const tasks = 300;
    const [together, inTurn] = [await create(store, tasks), await create(store, tasks)];
    const before: StoreReport[] = [];
    for (let i = 0; i < tasks; i += 7)
      before.push({ index: i, kind: "result", value: utf8(`old ${i}`) });
    for (let i = 3; i < tasks; i += 11) {
      before.push({ index: i, kind: "error", value: `died ${i}`, provisional: true, facts: other });
    }
    const post: StoreReport[] = [];
    for (let i = 0; i < tasks; i++) {
      const facts: TaskFacts = { startedAt: i, endedAt: i + 1, host: `node-${i % 5}`, attempt: 1 };
      if (i % 13 === 0)
        post.push({ index: i, kind: "error", value: `death ${i}`, provisional: true });
      post.push(
        i % 9 === 0
          ? { index: i, kind: "error", value: `Traceback ${i}`, ...(i % 2 === 0 && { facts }) }
          : {
              index: i,
              kind: "result",
              value: utf8(`r ${i}`),
              facts: { ...facts, log: `log ${i}` },
            },
      );
      // A task reported again in the same post, far from its first report, or at once.
      if (i % 17 === 0)
        post.push({ index: (i * 31) % tasks, kind: "result", value: utf8("again") });
    }
    const outcomes: boolean[][] = [[], []];
    for (const [n, id] of [together, inTurn].entries()) {
      await store.putReports(id, before);
      if (id === together) outcomes[n] = await store.putReports(id, post);
      else for (const report of post) outcomes[n]?.push(...(await store.putReports(id, [report])));
    }
    expect(outcomes[0]).toEqual(outcomes[1]);
    const stateOf = async (id: number) => ({
      counts: await store.counts(id),
      results: (await store.getResults(id)).map((r) => show(r.result)),
      errors: (await store.getErrors(id)).map((e) => [e.index, e.error, e.provisional]),
      facts: await store.getTaskFacts(id),
      logs: await store.getLogs(id, 0, tasks),
    });
    expect(await stateOf(together)).toEqual(await stateOf(inTurn));
  });
}
