import type { StoreReport, TaskFactsEntry } from "@sheepdog/contracts";
import type { TaskRunView, TimingView } from "./api-types.js";
import type { ReportTimes } from "./report-times.js";
import { ReportTimesCollector } from "./report-times.js";
import type { AttemptTally, RunFacts } from "./task-facts.js";
import { runSeconds, runView } from "./task-facts.js";
import { STATE } from "./task-states.js";

const HISTOGRAM_BUCKETS = 30;
const SLOWEST = 10;
/** The most points of the wait-vs-run chart (evenly picked from all timed tasks). */
const MAX_POINTS = 5_000;
/**
 * Runs of tasks without a report closer than this are read as one range: a read of the tasks
 * between costs less than a read of its own.
 */
const MERGE_GAP = 4_096;
/** The most tasks one read asks for. */
const READ_SLICE = 10_000;
/** The facts of a report that brought none. */
const NO_FACTS: RunFacts = {};

/** What a pass over a request's facts gives the page. */
export interface FactsSummary {
  timing: TimingView | null;
  times: ReportTimes | null;
  attempts: AttemptTally;
}

/** Reads the facts of tasks `start` to `start + count - 1` by position, `null` for no report. */
export type FactsReader = (start: number, count: number) => Promise<(TaskFactsEntry | null)[]>;

/** A range of task indices. */
export interface IndexRange {
  start: number;
  count: number;
}

/**
 * A request's facts, taken in as they come: each task's state, run times, when its report came
 * and its attempt. A report never changes once stored (the first one wins), so {@link catchUp}
 * reads only the tasks that had no report at its last read: a read costs the new reports, not
 * the request. Retries reset tasks, and change the request's meta: its owner starts a new
 * tally then (see request-details.ts).
 */
export class FactsTally {
  /** Each task's state by its report (`STATE`: no report yet, done, error). */
  readonly states: Uint8Array;
  readonly attempts: AttemptTally = { results: new Map(), errors: new Map() };
  readonly #createdAt: number;
  readonly #times = new ReportTimesCollector();
  /** Run and queue-wait seconds of the timed tasks, in the order they came. */
  readonly #runs: Float64Array;
  readonly #waits: Float64Array;
  #timed = 0;
  #longestRun = 0;
  readonly #slowest: TaskRunView[] = [];
  #reported = 0;

  /** A tally of a request of `tasks` tasks created at `createdAt` (ms), no report yet. */
  constructor(tasks: number, createdAt: number) {
    this.states = new Uint8Array(tasks).fill(STATE.pending);
    this.#runs = new Float64Array(tasks);
    this.#waits = new Float64Array(tasks);
    this.#createdAt = createdAt;
  }

  /** How many tasks' reports it has taken in. */
  get reported(): number {
    return this.#reported;
  }

  /**
   * Reads the facts of every task that had no report at the last read, and takes them in, in
   * slices: a slice starts at the first task still without one, so that reports taken in
   * meanwhile (see {@link takeIn}) are not read again.
   */
  async catchUp(read: FactsReader): Promise<void> {
    for (const { start, count } of pendingRanges(this.states, MERGE_GAP)) {
      const end = start + count;
      let first = this.states.indexOf(STATE.pending, start);
      while (first !== -1 && first < end) {
        const sliceEnd = Math.min(first + READ_SLICE, end);
        this.#takeRead(first, await read(first, sliceEnd - first));
        first = this.states.indexOf(STATE.pending, sliceEnd);
      }
    }
  }

  #takeRead(start: number, entries: readonly (TaskFactsEntry | null)[]): void {
    for (let at = 0; at < entries.length; at++) {
      const entry = entries[at];
      if (entry && this.states[start + at] === STATE.pending)
        this.add(start + at, entry.kind, entry);
    }
  }

  /**
   * Takes in a report as its store stored it (see `Store.watchReports`), unless its task has
   * one here or is not one of the request's.
   */
  takeIn(report: StoreReport): void {
    if (this.states[report.index] !== STATE.pending) return;
    this.add(report.index, report.kind, report.facts ?? NO_FACTS);
  }

  /** Takes in task `index`'s report (the caller sees that it is new). */
  add(index: number, kind: "result" | "error", facts: RunFacts): void {
    this.states[index] = kind === "result" ? STATE.done : STATE.error;
    this.#reported++;
    this.#times.add(kind, facts);
    if (facts.attempt !== undefined) {
      const tally = kind === "result" ? this.attempts.results : this.attempts.errors;
      tally.set(facts.attempt, (tally.get(facts.attempt) ?? 0) + 1);
    }
    const run = runSeconds(facts);
    if (run === null) return;
    this.#runs[this.#timed] = run;
    this.#waits[this.#timed++] = Math.max(
      0,
      ((facts.startedAt as number) - this.#createdAt) / 1000,
    );
    if (run > this.#longestRun) this.#longestRun = run;
    if (isAmongSlowest(this.#slowest, run)) offerSlowest(this.#slowest, runView(facts, index));
  }

  /**
   * The run times of the tasks whose facts say when they ran (a histogram, the slowest, each
   * task's queue wait from the request's creation to its start against its run time; `null`
   * when none says), when the reports came, and how many came from each attempt.
   */
  summary(): FactsSummary {
    const runs = this.#runs.subarray(0, this.#timed);
    const timing =
      this.#timed === 0
        ? null
        : {
            histogram: histogram(runs, this.#longestRun),
            slowest: [...this.#slowest],
            waitVsRun: sampled(runs, this.#waits.subarray(0, this.#timed)),
          };
    const attempts = {
      results: new Map(this.attempts.results),
      errors: new Map(this.attempts.errors),
    };
    return { timing, times: this.#times.times(), attempts };
  }
}

/**
 * The ranges that hold every task still without a report, runs closer than `mergeGap` taken
 * together.
 */
export function pendingRanges(states: Uint8Array, mergeGap: number): IndexRange[] {
  const ranges: IndexRange[] = [];
  let index = states.indexOf(STATE.pending);
  while (index !== -1) {
    let end = index;
    while (end < states.length && states[end] === STATE.pending) end++;
    const last = ranges.at(-1);
    if (last && index - (last.start + last.count) < mergeGap) last.count = end - last.start;
    else ranges.push({ start: index, count: end - index });
    index = states.indexOf(STATE.pending, end);
  }
  return ranges;
}

/**
 * Whether a run of `seconds` would be kept among the {@link SLOWEST} slowest: asked before its
 * view is made, since a million reports make a million calls and nearly all are not.
 */
function isAmongSlowest(slowest: readonly TaskRunView[], seconds: number): boolean {
  const last = slowest.at(-1);
  return slowest.length < SLOWEST || !last || seconds > (last.runSeconds as number);
}

/** Keeps `run` among the {@link SLOWEST} slowest (see {@link isAmongSlowest}), slowest first. */
function offerSlowest(slowest: TaskRunView[], run: TaskRunView): void {
  const seconds = run.runSeconds as number;
  let at = slowest.length;
  while (at > 0 && ((slowest[at - 1] as TaskRunView).runSeconds as number) < seconds) at--;
  slowest.splice(at, 0, run);
  if (slowest.length > SLOWEST) slowest.pop();
}

function histogram(
  seconds: Float64Array,
  max: number,
): { edges: number[]; counts: number[] } | null {
  if (seconds.length === 0) return null;
  const width = max > 0 ? max / HISTOGRAM_BUCKETS : 1;
  const counts = new Array<number>(HISTOGRAM_BUCKETS).fill(0);
  // Indexed, not for-of: a read of the view runs this over a million runs.
  for (let i = 0; i < seconds.length; i++) {
    const bucket = Math.min(HISTOGRAM_BUCKETS - 1, Math.floor((seconds[i] as number) / width));
    counts[bucket] = (counts[bucket] as number) + 1;
  }
  return { edges: counts.map((_, i) => i * width), counts };
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
