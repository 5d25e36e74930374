// @ts-check
import { h } from "./dom.js";
import { duration } from "./format.js";
import uPlot from "./vendor/uplot.js";

/**
 * @typedef {import("../src/internal/api-types.js").RateSeries} RateSeries
 * @typedef {import("../src/internal/api-types.js").TimingView} TimingView
 */

const HEIGHT = 220;
const GREEN = "#2f9e62";
const RED = "#d9483b";
const BLUE = "#3b82f6";

/**
 * A uPlot chart that follows its container's width.
 * @param {(width: number) => uPlot.Options} options
 * @param {uPlot.AlignedData} data
 */
function chart(options, data) {
  const element = h("div", { class: "chart" });
  /** @type {uPlot | undefined} */
  let plot;
  let latest = data;
  const resize = new ResizeObserver(() => {
    const width = element.clientWidth;
    if (width === 0) return;
    if (!plot) plot = new uPlot(options(width), latest, element);
    else plot.setSize({ width, height: HEIGHT });
  });
  resize.observe(element);
  return {
    element,
    /** @param {uPlot.AlignedData} next */
    set(next) {
      latest = next;
      plot?.setData(next);
    },
    destroy() {
      resize.disconnect();
      plot?.destroy();
    },
  };
}

/** @param {number} width @returns {uPlot.Options} */
function rateOptions(width) {
  return {
    width,
    height: HEIGHT,
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
    series: [
      {},
      { label: "results/s", stroke: GREEN, fill: "rgba(47, 158, 98, 0.12)", width: 2 },
      { label: "errors/s", stroke: RED, width: 2 },
    ],
    // Whole seconds: the counts are per second.
    axes: [
      { incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600] },
      { label: "reports per second", size: 56 },
    ],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  };
}

/**
 * Reports per second over time, results and errors.
 * @param {RateSeries} series
 */
export function rateChart(series) {
  const chartOf = chart(rateOptions, [series.t, series.results, series.errors]);
  return {
    ...chartOf,
    /** @param {RateSeries} next */
    update(next) {
      chartOf.set([next.t, next.results, next.errors]);
    },
  };
}

/**
 * Run times as a histogram.
 * @param {NonNullable<TimingView["histogram"]>} histogram
 */
export function histogramChart(histogram) {
  const bars = uPlot.paths.bars?.({ size: [0.9, 80] });
  /** @param {NonNullable<TimingView["histogram"]>} of */
  const bucketWidth = (of) => (of.edges.length > 1 ? (of.edges[1] ?? 1) - (of.edges[0] ?? 0) : 1);
  /** @param {NonNullable<TimingView["histogram"]>} of @returns {uPlot.AlignedData} */
  const dataOf = (of) => [of.edges.map((edge) => edge + bucketWidth(of) / 2), of.counts];
  let width = bucketWidth(histogram);
  /** @param {number} chartWidth @returns {uPlot.Options} */
  const options = (chartWidth) => ({
    width: chartWidth,
    height: HEIGHT,
    scales: { x: { time: false, range: (_u, min, max) => [min - width / 2, max + width / 2] } },
    series: [
      { label: "run time", value: (_u, v) => (v === null ? "—" : `≥ ${duration(v)}`) },
      {
        label: "tasks",
        stroke: BLUE,
        fill: "rgba(59, 130, 246, 0.45)",
        paths: bars,
        points: { show: false },
      },
    ],
    axes: [{ label: "run time (s)" }, { label: "tasks", size: 56 }],
    cursor: { drag: { x: false, y: false } },
  });
  const chartOf = chart(options, dataOf(histogram));
  return {
    ...chartOf,
    /** @param {NonNullable<TimingView["histogram"]>} next */
    update(next) {
      width = bucketWidth(next);
      chartOf.set(dataOf(next));
    },
  };
}

/**
 * Queue wait against run time, one point per task (sorted by wait, as uPlot's x values must be).
 * @param {NonNullable<TimingView["waitVsRun"]>} points
 */
export function waitVsRunChart(points) {
  /** @param {number} width @returns {uPlot.Options} */
  const options = (width) => ({
    width,
    height: HEIGHT,
    scales: { x: { time: false } },
    series: [
      { label: "queue wait", value: (_u, v) => (v === null ? "—" : duration(v)) },
      {
        label: "run time",
        stroke: BLUE,
        fill: BLUE,
        paths: () => null,
        points: { show: true, size: 5 },
      },
    ],
    axes: [{ label: "queue wait (s)" }, { label: "run time (s)", size: 56 }],
    cursor: { drag: { x: false, y: false } },
  });
  const chartOf = chart(options, byWait(points));
  return {
    ...chartOf,
    /** @param {NonNullable<TimingView["waitVsRun"]>} next */
    update(next) {
      chartOf.set(byWait(next));
    },
  };
}

/**
 * The points sorted by queue wait, as uPlot's x values must be.
 * @param {NonNullable<TimingView["waitVsRun"]>} points
 * @returns {uPlot.AlignedData}
 */
function byWait(points) {
  const order = points.wait
    .map((_, i) => i)
    .sort((a, b) => (points.wait[a] ?? 0) - (points.wait[b] ?? 0));
  return [order.map((i) => points.wait[i] ?? 0), order.map((i) => points.run[i] ?? 0)];
}
