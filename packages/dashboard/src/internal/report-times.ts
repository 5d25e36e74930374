import type { RateSeries } from "./api-types.js";
import type { ReportsPerSecond } from "./rate-series.js";
import { binnedRates } from "./rate-series.js";
import type { IndexedFacts } from "./task-facts.js";

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

  /** The times of `facts`' reports, `null` when none says when it ended. */
  static of(facts: readonly IndexedFacts[]): ReportTimes | null {
    const results = new Float64Array(facts.length);
    const errors = new Float64Array(facts.length);
    let resultCount = 0;
    let errorCount = 0;
    let firstStart = Number.POSITIVE_INFINITY;
    let lastEnd = Number.NEGATIVE_INFINITY;
    for (const entry of facts) {
      const end = entry.endedAt;
      if (typeof end !== "number") continue;
      firstStart = Math.min(firstStart, entry.startedAt ?? end, end);
      lastEnd = Math.max(lastEnd, end);
      if (entry.kind === "result") results[resultCount++] = Math.floor(end / 1000);
      else errors[errorCount++] = Math.floor(end / 1000);
    }
    const reports = resultCount + errorCount;
    if (reports === 0) return null;
    const perSecond = countPerSecond(
      results.subarray(0, resultCount).sort(),
      errors.subarray(0, errorCount).sort(),
    );
    return new ReportTimes(perSecond, { firstStart, lastEnd, reports });
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
