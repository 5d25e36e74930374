import type { RequestId, Store, TaskFacts, TaskFactsEntry } from "@sheepdog/contracts";
import type { Attempt, TaskLogView, TaskRunView } from "./api-types.js";

/*
 * What a store records of each call beside its report (`TaskFacts` in the contracts: when it
 * ran, where, its peak memory, its attempt, its output), read through the optional
 * `getTaskFacts` and `getLogs`. This module is the one place that reads them: where a store
 * has neither, the page says "not recorded".
 */

/** A task's facts with its index. */
export type IndexedFacts = TaskFactsEntry & { index: number };

/** What a task's run is told by: its facts, as read back or as its report brought them. */
export type RunFacts = Omit<TaskFacts, "log">;

/** Whether the store records facts (`getTaskFacts`). */
export function recordsFacts(store: Store): boolean {
  return typeof store.getTaskFacts === "function";
}

/**
 * The report kind and facts of tasks `start` to `start + count - 1` by position (`null` for a
 * task without a report), `null` when the store records none.
 */
export async function readFactsRange(
  store: Store,
  id: RequestId,
  start: number,
  count: number,
): Promise<(TaskFactsEntry | null)[] | null> {
  if (typeof store.getTaskFacts !== "function") return null;
  return count === 0 ? [] : store.getTaskFacts(id, start, count);
}

/** One task's run, or `null` when the store records none (or it has no report yet). */
export async function readRun(
  store: Store,
  id: RequestId,
  index: number,
): Promise<TaskRunView | null> {
  if (typeof store.getTaskFacts !== "function") return null;
  const [entry] = await store.getTaskFacts(id, index, 1);
  return entry ? runView(entry, index) : null;
}

/** `[sheepdog: 1234 bytes cut]` and a line feed: how `logCutMark` starts a cut log. */
const CUT_MARK = /^\[sheepdog: (\d+) bytes cut\]\n/;

/**
 * What a task printed, `undefined` when the store records no logs, `null` when it has none for
 * this task.
 */
export async function readLog(
  store: Store,
  id: RequestId,
  index: number,
): Promise<TaskLogView | null | undefined> {
  if (typeof store.getLogs !== "function") return undefined;
  const [entry] = await store.getLogs(id, index, 1);
  if (!entry) return null;
  const cut = CUT_MARK.exec(entry.log);
  return cut
    ? { text: entry.log.slice(cut[0].length), cutBytes: Number(cut[1]) }
    : { text: entry.log, cutBytes: 0 };
}

/** How long a task's call ran (seconds), `null` when its facts do not say. */
export function runSeconds(facts: RunFacts): number | null {
  if (typeof facts.startedAt !== "number" || typeof facts.endedAt !== "number") return null;
  return Math.max(0, (facts.endedAt - facts.startedAt) / 1000);
}

/** Task `index`'s facts as the page shows them. */
export function runView(facts: RunFacts, index: number): TaskRunView {
  return {
    index,
    runSeconds: runSeconds(facts),
    host: facts.host ?? null,
    peakMemoryBytes: facts.peakMemoryBytes ?? null,
    attempt: facts.attempt ?? null,
  };
}

/** How many reports came from each attempt (1 is the first run), by kind. */
export interface AttemptTally {
  results: Map<number, number>;
  errors: Map<number, number>;
}

/**
 * The attempts with how many of their tasks' reports came from each (by the facts' `attempt`:
 * 1 is the first run), `null` counts where no report says its attempt (the store records no
 * facts, or its workers send none).
 */
export function withReportsByAttempt(
  attempts: readonly Attempt[],
  tally: AttemptTally | null,
): Attempt[] {
  if (!tally || (tally.results.size === 0 && tally.errors.size === 0)) return [...attempts];
  return attempts.map((attempt) => ({
    ...attempt,
    results: tally.results.get(attempt.attempt + 1) ?? 0,
    errors: tally.errors.get(attempt.attempt + 1) ?? 0,
  }));
}
