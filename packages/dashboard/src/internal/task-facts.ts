import type { RequestId, Store, TaskFactsEntry } from "@sheepdog/contracts";
import type { Attempt, TaskLogView, TaskRunView, TimingView } from "./api-types.js";

/*
 * What a store records of each call beside its report (`TaskFacts` in the contracts: when it
 * ran, where, its peak memory, its attempt, its output), read through the optional
 * `getTaskFacts` and `getLogs`. This module is the one place that reads them: where a store
 * has neither, the page says "not recorded".
 */

/** A task's facts with its index. */
export type IndexedFacts = TaskFactsEntry & { index: number };

/** Every task's facts (tasks with a report only), or `null` when the store records none. */
export async function readFacts(
  store: Store,
  id: RequestId,
  tasks: number,
): Promise<IndexedFacts[] | null> {
  if (typeof store.getTaskFacts !== "function") return null;
  if (tasks === 0) return [];
  const entries = await store.getTaskFacts(id, 0, tasks);
  const facts: IndexedFacts[] = [];
  entries.forEach((entry, index) => {
    if (entry) facts.push({ ...entry, index });
  });
  return facts;
}

/** One task's run, or `null` when the store records none (or it has no report yet). */
export async function readRun(
  store: Store,
  id: RequestId,
  index: number,
): Promise<TaskRunView | null> {
  if (typeof store.getTaskFacts !== "function") return null;
  const [entry] = await store.getTaskFacts(id, index, 1);
  return entry ? runView({ ...entry, index }) : null;
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

function runSeconds(facts: TaskFactsEntry): number | null {
  if (typeof facts.startedAt !== "number" || typeof facts.endedAt !== "number") return null;
  return Math.max(0, (facts.endedAt - facts.startedAt) / 1000);
}

/** A task's facts as the page shows them. */
export function runView(facts: IndexedFacts): TaskRunView {
  return {
    index: facts.index,
    runSeconds: runSeconds(facts),
    host: facts.host ?? null,
    peakMemoryBytes: facts.peakMemoryBytes ?? null,
    attempt: facts.attempt ?? null,
  };
}

const HISTOGRAM_BUCKETS = 30;
const SLOWEST = 10;
/** The most points of the wait-vs-run chart (evenly picked from all tasks). */
const MAX_POINTS = 5_000;

function histogram(seconds: readonly number[]): { edges: number[]; counts: number[] } | null {
  if (seconds.length === 0) return null;
  let max = 0;
  for (const s of seconds) max = Math.max(max, s);
  const width = max > 0 ? max / HISTOGRAM_BUCKETS : 1;
  const counts = new Array<number>(HISTOGRAM_BUCKETS).fill(0);
  for (const s of seconds) {
    const bucket = Math.min(HISTOGRAM_BUCKETS - 1, Math.floor(s / width));
    counts[bucket] = (counts[bucket] ?? 0) + 1;
  }
  return { edges: counts.map((_, i) => i * width), counts };
}

/**
 * The run times of the tasks whose facts say when they ran: a histogram, the slowest, and each
 * task's queue wait (from the request's creation to its start) against its run time. `null`
 * when no task's facts say when it ran.
 */
export function timingView(facts: readonly IndexedFacts[], createdAt: number): TimingView | null {
  const timed: { facts: IndexedFacts; seconds: number }[] = [];
  for (const entry of facts) {
    const seconds = runSeconds(entry);
    if (seconds !== null) timed.push({ facts: entry, seconds });
  }
  if (timed.length === 0) return null;
  const slowest = [...timed]
    .sort((a, b) => b.seconds - a.seconds)
    .slice(0, SLOWEST)
    .map((entry) => runView(entry.facts));
  const step = Math.max(1, Math.ceil(timed.length / MAX_POINTS));
  const wait: number[] = [];
  const run: number[] = [];
  for (let i = 0; i < timed.length; i += step) {
    const entry = timed[i] as { facts: IndexedFacts; seconds: number };
    wait.push(Math.max(0, ((entry.facts.startedAt as number) - createdAt) / 1000));
    run.push(entry.seconds);
  }
  return {
    histogram: histogram(timed.map((entry) => entry.seconds)),
    slowest,
    waitVsRun: { wait, run },
  };
}

/**
 * The attempts with how many of their tasks' reports came from each (by the facts' `attempt`:
 * 1 is the first run), `null` counts where no report says its attempt (the store records no
 * facts, or its workers send none).
 */
export function withReportsByAttempt(
  attempts: readonly Attempt[],
  facts: readonly IndexedFacts[] | null,
): Attempt[] {
  const results = new Map<number, number>();
  const errors = new Map<number, number>();
  for (const entry of facts ?? []) {
    if (entry.attempt === undefined) continue;
    const tally = entry.kind === "result" ? results : errors;
    tally.set(entry.attempt, (tally.get(entry.attempt) ?? 0) + 1);
  }
  if (results.size === 0 && errors.size === 0) return [...attempts];
  return attempts.map((attempt) => ({
    ...attempt,
    results: results.get(attempt.attempt + 1) ?? 0,
    errors: errors.get(attempt.attempt + 1) ?? 0,
  }));
}
