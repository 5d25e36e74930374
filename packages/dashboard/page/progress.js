// @ts-check
import { h } from "./dom.js";
import { count, percent } from "./format.js";

/** @typedef {import("../src/internal/api-types.js").RequestRow} RequestRow */

/**
 * A progress bar of a request: done (green) and failed (red) over what is left.
 * @param {RequestRow} row
 */
export function progressBar(row) {
  const bar = h("div", {
    class: "progress",
    role: "progressbar",
    "aria-valuemin": 0,
    "aria-valuemax": row.tasks,
  });
  const total = Math.max(1, row.tasks);
  for (const [part, value] of /** @type {const} */ ([
    ["done", row.done],
    ["failed", row.failed],
  ])) {
    const segment = h("span", { class: `segment ${part}` });
    segment.style.width = `${(100 * value) / total}%`;
    bar.append(segment);
  }
  bar.setAttribute("aria-valuenow", String(row.done + row.failed));
  bar.title = `${count(row.done)} done, ${count(row.failed)} failed of ${count(row.tasks)} (${percent(row.done + row.failed, row.tasks)})`;
  return bar;
}

/**
 * The words of a request's state.
 * @param {RequestRow} row
 */
export function stateBadge(row) {
  const words = {
    running: "in progress",
    complete: row.failed > 0 ? "finished with errors" : "complete",
    cancelled: "cancelled",
    interrupted: "interrupted",
    failed: "stopped",
  };
  const kind = row.state === "complete" && row.failed > 0 ? "complete-errors" : row.state;
  return h("span", { class: `badge ${kind}` }, words[row.state]);
}
