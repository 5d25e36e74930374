import { describe, expect, it } from "vitest";
import { RateHistory } from "./rate-history.js";

describe("RateHistory", () => {
  it("counts the reports seen per second, from a baseline", () => {
    const history = new RateHistory(1_000_000, 50, 5);
    history.observe(1_000_500, 60, 5);
    history.observe(1_000_900, 70, 6);
    history.observe(1_003_100, 80, 6);
    expect(history.series(1_003_200)).toEqual({
      t: [1000, 1001, 1002, 1003],
      results: [20, 0, 0, 10],
      errors: [1, 0, 0, 0],
      binSeconds: 1,
      from: "watched",
    });
  });

  it("measures throughput over the last half minute, once watched long enough", () => {
    const history = new RateHistory(0, 0, 0);
    history.observe(1_000, 10, 0);
    expect(history.throughput(1_000)).toBeNull();
    history.observe(10_000, 100, 0);
    expect(history.throughput(10_000)).toBe(10);
    expect(history.throughput(60_000)).toBe(0);
  });

  it("takes a retry's reset as no reports, never a negative rate", () => {
    const history = new RateHistory(0, 10, 5);
    history.observe(1_000, 10, 0);
    history.observe(2_000, 12, 0);
    expect(history.series(2_000)).toEqual({
      t: [2],
      results: [2],
      errors: [0],
      binSeconds: 1,
      from: "watched",
    });
  });

  it("ends a minute after the last report", () => {
    const history = new RateHistory(0, 0, 0);
    history.observe(1_000, 1, 0);
    expect(history.series(3_600_000).t).toHaveLength(61);
  });

  it("bins a long watch to at most 600 points, as reports per second", () => {
    const history = new RateHistory(0, 0, 0);
    for (let second = 1; second <= 3000; second++) history.observe(second * 1000, second * 2, 0);
    const series = history.series(3_000_000);
    expect(series.binSeconds).toBe(5);
    expect(series.t).toHaveLength(600);
    expect(series.results.every((perSecond) => perSecond === 2)).toBe(true);
  });
});
