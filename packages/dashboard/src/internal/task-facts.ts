import type { RequestId, Store, TaskFactsEntry } from "@sheepdog/contracts";
import type { Attempt, TaskLogView, TaskRunView, TimingView } from "./api-types.js";
import type { ReportTimes } from "./report-times.js";
import { ReportTimesCollector } from "./report-times.js";

/*
 * What a store records of each call beside its report (`TaskFacts` in the contracts: when it
 * ran, where, its peak memory, its attempt, its output), read through the optional
 * `getTaskFacts` and `getLogs`. This module is the one place that reads them: where a store
 * has neither, the page says "not recorded".
 */

/** A task's facts with its index. */
export type IndexedFacts = TaskFactsEntry & { index: number };

/**
 * Every task's report kind and facts by position (`null` for a task without a report), or
 * `null` when the store records none.
 */
export async function readFacts(
  store: Store,
  id: RequestId,
  tasks: number,
): Promise<(TaskFactsEntry | null)[] | null> {
  if (typeof store.getTaskFacts !== "function") return null;
  if (tasks === 0) return [];
  return store.getTaskFacts(id, 0, tasks);
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

function runSeconds(facts: TaskFactsEntry): number | null {
  if (typeof facts.startedAt !== "number" || typeof facts.endedAt !== "number") return null;
  return Math.max(0, (facts.endedAt - facts.startedAt) / 1000);
}

/** Task `index`'s facts as the page shows them. */
export function runView(facts: TaskFactsEntry, index: number): TaskRunView {
  return {
    index,
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

function histogram(
  seconds: Float64Array,
  max: number,
): { edges: number[]; counts: number[] } | null {
  if (seconds.length === 0) return null;
  const width = max > 0 ? max / HISTOGRAM_BUCKETS : 1;
  const counts = new Array<number>(HISTOGRAM_BUCKETS).fill(0);
  for (const s of seconds) {
    const bucket = Math.min(HISTOGRAM_BUCKETS - 1, Math.floor(s / width));
    counts[bucket] = (counts[bucket] ?? 0) + 1;
  }
  return { edges: counts.map((_, i) => i * width), counts };
}

/** How many reports came from each attempt (1 is the first run), by kind. */
export interface AttemptTally {
  results: Map<number, number>;
  errors: Map<number, number>;
}

/** The slowest tasks, at most `size`, slowest first: a bounded list kept sorted. */
class Slowest {
  readonly indexes: number[] = [];
  readonly seconds: number[] = [];

  constructor(readonly size: number) {}

  offer(index: number, seconds: number): void {
    const n = this.seconds.length;
    if (n === this.size && seconds <= (this.seconds[n - 1] as number)) return;
    let at = n;
    while (at > 0 && (this.seconds[at - 1] as number) < seconds) at--;
    this.seconds.splice(at, 0, seconds);
    this.indexes.splice(at, 0, index);
    if (this.seconds.length > this.size) {
      this.seconds.pop();
      this.indexes.pop();
    }
  }
}

/** What one pass over a request's facts gives the page. */
export interface FactsSummary {
  timing: TimingView | null;
  times: ReportTimes | null;
  attempts: AttemptTally;
}

/**
 * One pass over every task's facts (by position, `null` for no report): the run times of the
 * tasks whose facts say when they ran (a histogram, the slowest, each task's queue wait from
 * the request's creation to its start against its run time; `null` when none says), when the
 * reports came, and how many came from each attempt.
 */
export function summariseFacts(
  entries: readonly (TaskFactsEntry | null)[],
  createdAt: number,
): FactsSummary {
  const seconds = new Float64Array(entries.length);
  const waits = new Float64Array(entries.length);
  const slowest = new Slowest(SLOWEST);
  const times = new ReportTimesCollector(entries.length);
  const attempts: AttemptTally = { results: new Map(), errors: new Map() };
  let timed = 0;
  let max = 0;
  for (let index = 0; index < entries.length; index++) {
    const entry = entries[index];
    if (!entry) continue;
    times.add(entry);
    if (entry.attempt !== undefined) {
      const tally = entry.kind === "result" ? attempts.results : attempts.errors;
      tally.set(entry.attempt, (tally.get(entry.attempt) ?? 0) + 1);
    }
    const run = runSeconds(entry);
    if (run === null) continue;
    seconds[timed] = run;
    waits[timed++] = Math.max(0, ((entry.startedAt as number) - createdAt) / 1000);
    if (run > max) max = run;
    slowest.offer(index, run);
  }
  const timing =
    timed === 0
      ? null
      : {
          histogram: histogram(seconds.subarray(0, timed), max),
          slowest: slowest.indexes.map((i) => runView(entries[i] as TaskFactsEntry, i)),
          waitVsRun: sampled(seconds.subarray(0, timed), waits.subarray(0, timed)),
        };
  return { timing, times: times.times(), attempts };
}

/** At most {@link MAX_POINTS} (wait, run) pairs, evenly picked. */
function sampled(run: Float64Array, wait: Float64Array): { wait: number[]; run: number[] } {
  const step = Math.max(1, Math.ceil(run.length / MAX_POINTS));
  const picked = { wait: [] as number[], run: [] as number[] };
  for (let i = 0; i < run.length; i += step) {
    picked.wait.push(wait[i] as number);
    picked.run.push(run[i] as number);
  }
  return picked;
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
