import { describe, expect, it } from "vitest";
import { binnedRates, binWidth, MAX_RATE_POINTS } from "./rate-series.js";
import { ReportTimes } from "./report-times.js";
import type { IndexedFacts } from "./task-facts.js";

/** A report of task `index` that ran from `startedAt` to `endedAt` (ms). */
function report(
  index: number,
  kind: "result" | "error",
  startedAt: number | undefined,
  endedAt: number | undefined,
): IndexedFacts {
  return { index, kind, hasLog: false, startedAt, endedAt };
}

describe("binnedRates", () => {
  it("keeps one point per second while that stays within 600 points, then picks wider bins", () => {
    expect(binWidth(0, 599)).toBe(1);
    expect(binWidth(0, 600)).toBe(2);
    expect(binWidth(0, 7199)).toBe(15);
    expect(binWidth(0, 86_400 * 30)).toBe(7200);
    expect(Math.ceil((86_400 * 2000) / binWidth(0, 86_400 * 2000))).toBeLessThanOrEqual(600);
  });

  it("divides each bin's reports by the seconds it covers, the last one's included", () => {
    const counts = { t: [100, 101, 104, 110], results: [4, 6, 10, 3], errors: [0, 2, 0, 0] };
    // 11 seconds fit in 600 points: one per second, zeros between.
    const perSecond = binnedRates(counts, 100, 110, "reports");
    expect(perSecond.t).toEqual([100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110]);
    expect(perSecond.results).toEqual([4, 6, 0, 0, 10, 0, 0, 0, 0, 0, 3]);
    expect(perSecond.errors).toEqual([0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // 1,250 seconds take bins of 5 s; the last covers 1 s.
    const long = binnedRates(
      { t: [100, 104, 1349], results: [5, 5, 1], errors: [0, 0, 0] },
      100,
      1349,
      "reports",
    );
    expect(long.binSeconds).toBe(5);
    expect(long.t).toHaveLength(250);
    expect(long.results[0]).toBe(2);
    expect(long.t.at(-1)).toBe(1345);
    expect(long.results.at(-1)).toBe(0.2);
  });
});

describe("ReportTimes", () => {
  it("is null when no report says when it ended", () => {
    expect(ReportTimes.of([])).toBeNull();
    expect(ReportTimes.of([report(0, "result", 1000, undefined)])).toBeNull();
  });

  it("counts results and errors by the second they ended, from the first start", () => {
    const times = ReportTimes.of([
      report(0, "result", 10_000, 12_500),
      report(1, "result", 10_200, 12_900),
      report(2, "error", 11_000, 14_000),
      report(3, "result", undefined, 14_100),
      report(4, "error", undefined, undefined),
    ]) as ReportTimes;
    expect(times.series(60_000, false)).toEqual({
      t: [10, 11, 12, 13, 14],
      results: [0, 0, 2, 0, 1],
      errors: [0, 0, 0, 0, 1],
      binSeconds: 1,
      from: "reports",
    });
    // From the first start (10 s) to the last end (14.1 s): 4 reports in 4.1 s.
    expect(times.averageThroughput()).toBeCloseTo(4 / 4.1);
  });

  it("goes on to now while the request runs, so that a stall shows", () => {
    const times = ReportTimes.of([report(0, "result", 10_000, 11_000)]) as ReportTimes;
    const series = times.series(20_500, true);
    expect(series.t).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    expect(series.results.slice(1, 3)).toEqual([1, 0]);
    // A node's clock ahead of the server's never cuts the series short.
    expect(times.series(5_000, true).t).toEqual([10, 11]);
  });

  it("keeps 100,000 tasks over ten hours to at most 600 points, every report counted", () => {
    const start = Date.UTC(2026, 0, 1);
    const facts: IndexedFacts[] = [];
    for (let i = 0; i < 100_000; i++) {
      const endedAt = start + Math.floor((i * 36_000_000) / 100_000) + 900;
      facts.push(report(i, i % 50 === 0 ? "error" : "result", endedAt - 900, endedAt));
    }
    const began = performance.now();
    const times = ReportTimes.of(facts) as ReportTimes;
    const series = times.series(start + 36_000_000, false);
    const elapsed = performance.now() - began;
    console.log(`[dashboard] report times of 100,000 tasks: ${elapsed.toFixed(1)} ms`);
    expect(series.t.length).toBeLessThanOrEqual(MAX_RATE_POINTS);
    // Ten hours and a second do not fit in 600 minutes: two-minute bins.
    expect(series.binSeconds).toBe(120);
    expect(series.t).toHaveLength(301);
    const lastSecond = Math.floor(times.lastEnd / 1000);
    const covered = series.t.map((t) => Math.min(120, lastSecond - t + 1));
    const total = (values: number[]) =>
      values.reduce((sum, perSecond, i) => sum + perSecond * (covered[i] as number), 0);
    expect(Math.round(total(series.results))).toBe(98_000);
    expect(Math.round(total(series.errors))).toBe(2_000);
    expect(times.averageThroughput()).toBeCloseTo(100_000 / 36_000, 1);
  });
});
