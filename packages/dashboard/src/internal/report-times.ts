import type { TaskFactsEntry } from "@sheepdog/contracts";
import type { RateSeries } from "./api-types.js";
import type { ReportsPerSecond } from "./rate-series.js";
import { binnedRates } from "./rate-series.js";

/**
 * When a request's reports came, by the end times its store records of them (`endedAt`, the
 * node's clock): the "reports per second" chart of any request, opened while it runs or long
 * after, and the throughput of a finished one. Built once per read of the facts.
 */
export class ReportTimes {
  /** When the first timed task started (its end when it tells no start), ms since the epoch. */
  readonly firstStart: number;
  /** When the last timed task ended, ms since the epoch. */
  readonly lastEnd: number;
  /** How many reports say when they ended. */
  readonly reports: number;
  readonly #perSecond: ReportsPerSecond;

  private constructor(
    perSecond: ReportsPerSecond,
    span: { firstStart: number; lastEnd: number; reports: number },
  ) {
    this.#perSecond = perSecond;
    this.firstStart = span.firstStart;
    this.lastEnd = span.lastEnd;
    this.reports = span.reports;
  }

  /** The times of `entries`' reports (by position, `null` for no report), `null` when none says when it ended. */
  static of(entries: readonly (TaskFactsEntry | null)[]): ReportTimes | null {
    const collector = new ReportTimesCollector(entries.length);
    for (const entry of entries) if (entry) collector.add(entry);
    return collector.times();
  }

  /** Builds a {@link ReportTimes} from end times counted in seconds. */
  static fromSeconds(
    results: Float64Array,
    errors: Float64Array,
    span: { firstStart: number; lastEnd: number },
  ): ReportTimes | null {
    const reports = results.length + errors.length;
    if (reports === 0) return null;
    const perSecond = countPerSecond(results.sort(), errors.sort());
    return new ReportTimes(perSecond, { ...span, reports });
  }

  /**
   * Reports per second from the first start to the last end, or on to `now` (ms) while the
   * request runs, so that a stall shows as zeros up to the present.
   */
  series(now: number, running: boolean): RateSeries {
    const first = Math.floor(this.firstStart / 1000);
    const lastReport = Math.floor(this.lastEnd / 1000);
    const last = running ? Math.max(lastReport, Math.floor(now / 1000)) : lastReport;
    return binnedRates(this.#perSecond, first, last, "reports");
  }

  /** Reports per second from the first start to the last end, `null` when that took no time. */
  averageThroughput(): number | null {
    const seconds = (this.lastEnd - this.firstStart) / 1000;
    return seconds > 0 ? this.reports / seconds : null;
  }
}

/** The seconds of two sorted lists of seconds, with how often each list holds each. */
function countPerSecond(results: Float64Array, errors: Float64Array): ReportsPerSecond {
  const counts = { t: [] as number[], results: [] as number[], errors: [] as number[] };
  let r = 0;
  let e = 0;
  while (r < results.length || e < errors.length) {
    const second = Math.min(
      results[r] ?? Number.POSITIVE_INFINITY,
      errors[e] ?? Number.POSITIVE_INFINITY,
    );
    const firstResult = r;
    const firstError = e;
    while (results[r] === second) r++;
    while (errors[e] === second) e++;
    counts.t.push(second);
    counts.results.push(r - firstResult);
    counts.errors.push(e - firstError);
  }
  return counts;
}

/**
 * Collects the end times of up to `size` reports, one at a time (so that one pass over a
 * request's facts can feed it), into a {@link ReportTimes}.
 */
export class ReportTimesCollector {
  readonly #results: Float64Array;
  readonly #errors: Float64Array;
  #resultCount = 0;
  #errorCount = 0;
  #firstStart = Number.POSITIVE_INFINITY;
  #lastEnd = Number.NEGATIVE_INFINITY;

  constructor(size: number) {
    this.#results = new Float64Array(size);
    this.#errors = new Float64Array(size);
  }

  /** Counts one report (nothing when it does not say when it ended). */
  add(entry: TaskFactsEntry): void {
    const end = entry.endedAt;
    if (typeof end !== "number") return;
    const start = entry.startedAt ?? end;
    if (start < this.#firstStart) this.#firstStart = start;
    if (end < this.#firstStart) this.#firstStart = end;
    if (end > this.#lastEnd) this.#lastEnd = end;
    if (entry.kind === "result") this.#results[this.#resultCount++] = Math.floor(end / 1000);
    else this.#errors[this.#errorCount++] = Math.floor(end / 1000);
  }

  /** The times counted, `null` when no report said when it ended. */
  times(): ReportTimes | null {
    return ReportTimes.fromSeconds(
      this.#results.subarray(0, this.#resultCount),
      this.#errors.subarray(0, this.#errorCount),
      { firstStart: this.#firstStart, lastEnd: this.#lastEnd },
    );
  }
}
