import type { RateSeries } from "./api-types.js";

/** The most points of a reports-per-second series: a long request gets wider bins. */
export const MAX_RATE_POINTS = 600;

/** The bin widths a series may use, in seconds: the narrowest that keeps it to the limit. */
const BIN_SECONDS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
] as const;

/** Reports per whole second: the seconds (ascending, since the epoch) that saw any. */
export interface ReportsPerSecond {
  t: readonly number[];
  results: readonly number[];
  errors: readonly number[];
}

/** The narrowest bin width (seconds) that covers `first .. last` in at most 600 points. */
export function binWidth(first: number, last: number): number {
  const span = Math.max(1, last - first + 1);
  for (const width of BIN_SECONDS) {
    if (Math.ceil(span / width) <= MAX_RATE_POINTS) return width;
  }
  return Math.ceil(span / MAX_RATE_POINTS);
}

function rounded(perSecond: number): number {
  return Math.round(perSecond * 1e6) / 1e6;
}

/**
 * Reports per second from second `first` to second `last` (both included), in bins that start
 * at `first` and keep the series to {@link MAX_RATE_POINTS} points: each point is the reports
 * of its bin divided by the seconds it covers (the last bin may cover fewer), zeros where none
 * came, so a chart's lines fall to the axis between bursts. Seconds outside are left out.
 */
export function binnedRates(
  counts: ReportsPerSecond,
  first: number,
  last: number,
  from: RateSeries["from"],
): RateSeries {
  const width = binWidth(first, last);
  const bins = last < first ? 0 : Math.floor((last - first) / width) + 1;
  const results = new Array<number>(bins).fill(0);
  const errors = new Array<number>(bins).fill(0);
  counts.t.forEach((second, i) => {
    if (second < first || second > last) return;
    const bin = Math.floor((second - first) / width);
    results[bin] = (results[bin] as number) + (counts.results[i] ?? 0);
    errors[bin] = (errors[bin] as number) + (counts.errors[i] ?? 0);
  });
  const t = results.map((_, bin) => first + bin * width);
  const covered = t.map((start) => Math.min(width, last - start + 1));
  return {
    t,
    results: results.map((n, bin) => rounded(n / (covered[bin] as number))),
    errors: errors.map((n, bin) => rounded(n / (covered[bin] as number))),
    binSeconds: width,
    from,
  };
}
