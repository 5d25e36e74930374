import type { RateSeries } from "./api-types.js";
import { binnedRates } from "./rate-series.js";

/** How many seconds of reports per second a request keeps (two hours). */
const MAX_SECONDS = 7200;
/** The window throughput is measured over. */
const THROUGHPUT_WINDOW_S = 30;
/** The least time watched before a throughput is given. */
const MIN_WATCHED_S = 2;
/** How long the chart goes on after the last report. */
const QUIET_TAIL_S = 60;

/**
 * The reports of one request per second, as the dashboard saw its counts change while it
 * watched: what a running request's throughput and ETA are computed from, and its "reports per
 * second" chart where the store records no report times.
 */
export class RateHistory {
  readonly #firstSeen: number;
  #results: number;
  #errors: number;
  readonly #t: number[] = [];
  readonly #resultsPerSecond: number[] = [];
  readonly #errorsPerSecond: number[] = [];

  /** Starts at counts seen at `now` (milliseconds), which count as the baseline. */
  constructor(now: number, results: number, errors: number) {
    this.#firstSeen = now;
    this.#results = results;
    this.#errors = errors;
  }

  /** Records the counts seen at `now`; reports since the last look count in `now`'s second. */
  observe(now: number, results: number, errors: number): void {
    // A retry forgets reports (the counts go down): that is no negative rate.
    const newResults = Math.max(0, results - this.#results);
    const newErrors = Math.max(0, errors - this.#errors);
    this.#results = results;
    this.#errors = errors;
    if (newResults === 0 && newErrors === 0) return;
    const second = Math.floor(now / 1000);
    const last = this.#t.length - 1;
    if (last >= 0 && this.#t[last] === second) {
      this.#resultsPerSecond[last] = (this.#resultsPerSecond[last] ?? 0) + newResults;
      this.#errorsPerSecond[last] = (this.#errorsPerSecond[last] ?? 0) + newErrors;
      return;
    }
    this.#t.push(second);
    this.#resultsPerSecond.push(newResults);
    this.#errorsPerSecond.push(newErrors);
    if (this.#t.length > MAX_SECONDS) {
      this.#t.shift();
      this.#resultsPerSecond.shift();
      this.#errorsPerSecond.shift();
    }
  }

  /** Reports per second over the last half minute, `null` when watched for too short a time. */
  throughput(now: number): number | null {
    const watched = (now - this.#firstSeen) / 1000;
    if (watched < MIN_WATCHED_S) return null;
    const from = Math.floor(now / 1000) - THROUGHPUT_WINDOW_S;
    let reports = 0;
    for (let i = this.#t.length - 1; i >= 0 && (this.#t[i] as number) > from; i--) {
      reports += (this.#resultsPerSecond[i] as number) + (this.#errorsPerSecond[i] as number);
    }
    return reports / Math.min(watched, THROUGHPUT_WINDOW_S);
  }

  /**
   * Reports per second from the first report seen to `now`'s second, or to a minute after the
   * last report when that came earlier, in bins of a second (wider for a long watch, to keep
   * the series short).
   */
  series(now: number): RateSeries {
    const first = this.#t[0];
    if (first === undefined)
      return { t: [], results: [], errors: [], binSeconds: 1, from: "watched" };
    const lastReport = this.#t[this.#t.length - 1] as number;
    const end = Math.max(lastReport, Math.min(Math.floor(now / 1000), lastReport + QUIET_TAIL_S));
    const counts = { t: this.#t, results: this.#resultsPerSecond, errors: this.#errorsPerSecond };
    return binnedRates(counts, Math.max(first, end - MAX_SECONDS + 1), end, "watched");
  }
}
