import type { TaskFactsEntry } from "@sheepdog/contracts";
import type { RateSeries } from "./api-types.js";
import type { ReportsPerSecond } from "./rate-series.js";
import { binnedRates } from "./rate-series.js";
import type { RunFacts } from "./task-facts.js";

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
    const collector = new ReportTimesCollector();
    for (const entry of entries) if (entry) collector.add(entry.kind, entry);
    return collector.times();
  }

  /** Builds a {@link ReportTimes} from reports counted per second. */
  static fromCounts(
    perSecond: ReportsPerSecond,
    span: { firstStart: number; lastEnd: number; reports: number },
  ): ReportTimes | null {
    return span.reports === 0 ? null : new ReportTimes(perSecond, span);
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

/**
 * Counts the end times of reports per second, one report at a time (so that one pass over a
 * request's facts, or the reports that came since the last pass, can feed it), into a
 * {@link ReportTimes}.
 */
export class ReportTimesCollector {
  /** Reports per second since the epoch: results, errors. */
  readonly #perSecond = new Map<number, [number, number]>();
  #reports = 0;
  #firstStart = Number.POSITIVE_INFINITY;
  #lastEnd = Number.NEGATIVE_INFINITY;

  /** Counts one report (nothing when it does not say when it ended). */
  add(kind: "result" | "error", facts: RunFacts): void {
    const end = facts.endedAt;
    if (typeof end !== "number") return;
    const start = facts.startedAt ?? end;
    if (start < this.#firstStart) this.#firstStart = start;
    if (end < this.#firstStart) this.#firstStart = end;
    if (end > this.#lastEnd) this.#lastEnd = end;
    const second = Math.floor(end / 1000);
    let counts = this.#perSecond.get(second);
    if (!counts) {
      counts = [0, 0];
      this.#perSecond.set(second, counts);
    }
    counts[kind === "result" ? 0 : 1]++;
    this.#reports++;
  }

  /** The times counted, `null` when no report said when it ended. */
  times(): ReportTimes | null {
    const t = [...this.#perSecond.keys()].sort((a, b) => a - b);
    const perSecond = {
      t,
      results: t.map((second) => this.#perSecond.get(second)?.[0] ?? 0),
      errors: t.map((second) => this.#perSecond.get(second)?.[1] ?? 0),
    };
    return ReportTimes.fromCounts(perSecond, {
      firstStart: this.#firstStart,
      lastEnd: this.#lastEnd,
      reports: this.#reports,
    });
  }
}
