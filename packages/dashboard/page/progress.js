// @ts-check
import { h } from "./dom.js";
import { count, percent } from "./format.js";

/** @typedef {import("../src/internal/api-types.js").RequestRow} RequestRow */

/**
 * A progress bar of a request: done (green) and failed (red) over what is left.
 * @param {RequestRow} row
 */
export function progressBar(row) {
  const bar = h(
    "div",
    { class: "progress", role: "progressbar", "aria-valuemin": 0 },
    h("span", { class: "segment done" }),
    h("span", { class: "segment failed" }),
  );
  setProgress(bar, row);
  return bar;
}

/**
 * Sets a bar of {@link progressBar} to a request's counts, in place.
 * @param {HTMLElement} bar
 * @param {RequestRow} row
 */
export function setProgress(bar, row) {
  const total = Math.max(1, row.tasks);
  const [done, failed] = /** @type {HTMLElement[]} */ ([...bar.children]);
  if (done) done.style.width = `${(100 * row.done) / total}%`;
  if (failed) failed.style.width = `${(100 * row.failed) / total}%`;
  bar.setAttribute("aria-valuemax", String(row.tasks));
  bar.setAttribute("aria-valuenow", String(row.done + row.failed));
  bar.title = `${count(row.done)} done, ${count(row.failed)} failed of ${count(row.tasks)} (${percent(row.done + row.failed, row.tasks)})`;
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
