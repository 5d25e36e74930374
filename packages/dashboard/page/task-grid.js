// @ts-check
import { h } from "./dom.js";
import { count } from "./format.js";

/**
 * The colour and name of each task state (see `TaskStateRuns` in src/internal/api-types.ts).
 * @type {Record<string, { colour: string, name: string }>}
 */
export const STATES = {
  d: { colour: "#2f9e62", name: "done" },
  e: { colour: "#d9483b", name: "error" },
  x: { colour: "#7a3db8", name: "dead" },
  ".": { colour: "#dde2e8", name: "no report yet" },
};

/** The tallest the grid is before it scrolls, in CSS pixels. */
const MAX_HEIGHT = 320;
const MIN_CELL = 3;
const MAX_CELL = 18;

/**
 * The tasks of a request as a grid of coloured cells on one canvas, drawn for the rows in view
 * only: no element per task, so a request of a million tasks costs what a few hundred do.
 * Hovering names a task; clicking selects it.
 */
export class TaskGrid {
  /** @param {(index: number) => void} onSelect */
  constructor(onSelect) {
    this.onSelect = onSelect;
    this.states = "";
    /** @type {number | null} */
    this.selected = null;
    this.layout = { cell: MAX_CELL, gap: 1, columns: 1, rows: 0 };
    this.canvas = h("canvas", { class: "grid-canvas", "aria-label": "task states" });
    this.spacer = h("div", { class: "grid-spacer" }, this.canvas);
    this.scroller = h("div", { class: "grid-scroll" }, this.spacer);
    this.tip = h("div", { class: "grid-tip", hidden: true });
    this.element = h("div", { class: "grid" }, this.scroller, this.tip);
    this.scroller.addEventListener("scroll", () => this.draw(), { passive: true });
    this.canvas.addEventListener("mousemove", (event) => this.hover(event));
    this.canvas.addEventListener("mouseleave", () => {
      this.tip.hidden = true;
    });
    this.canvas.addEventListener("click", (event) => {
      const index = this.indexAt(event);
      if (index !== null) this.select(index);
    });
    this.resize = new ResizeObserver(() => this.relayout());
    this.resize.observe(this.scroller);
  }

  /** @param {string} states one character per task */
  setStates(states) {
    const sameCount = states.length === this.states.length;
    this.states = states;
    if (sameCount) this.draw();
    else this.relayout();
  }

  /** @param {number} index */
  select(index) {
    this.selected = index;
    this.draw();
    this.onSelect(index);
  }

  relayout() {
    const width = this.scroller.clientWidth;
    const tasks = this.states.length;
    if (width === 0) return;
    const fit = Math.floor(Math.sqrt((width * MAX_HEIGHT) / Math.max(1, tasks)));
    const cell = Math.max(MIN_CELL, Math.min(MAX_CELL, fit));
    const columns = Math.max(1, Math.floor(width / cell));
    const rows = Math.ceil(tasks / columns);
    this.layout = { cell, gap: cell >= 6 ? 1 : 0, columns, rows };
    const height = rows * cell;
    this.spacer.style.height = `${height}px`;
    this.scroller.style.height = `${Math.min(height, MAX_HEIGHT)}px`;
    this.draw();
  }

  draw() {
    const { cell, gap, columns, rows } = this.layout;
    const width = this.scroller.clientWidth;
    const height = Math.min(rows * cell, MAX_HEIGHT);
    const ratio = window.devicePixelRatio || 1;
    if (
      this.canvas.width !== Math.round(width * ratio) ||
      this.canvas.height !== Math.round(height * ratio)
    ) {
      this.canvas.width = Math.round(width * ratio);
      this.canvas.height = Math.round(height * ratio);
      this.canvas.style.width = `${width}px`;
      this.canvas.style.height = `${height}px`;
    }
    const context = this.canvas.getContext("2d");
    if (!context) return;
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);
    const top = this.scroller.scrollTop;
    const firstRow = Math.floor(top / cell);
    const lastRow = Math.min(rows - 1, Math.floor((top + height) / cell));
    for (let row = firstRow; row <= lastRow; row++) {
      this.drawRow(context, row, row * cell - top, cell, gap, columns);
    }
    this.drawSelection(context, top);
  }

  /**
   * Draws one row as runs of one state: one rectangle per run when cells touch, one per cell
   * when a gap shows between them.
   * @param {CanvasRenderingContext2D} context
   * @param {number} row @param {number} y @param {number} cell @param {number} gap @param {number} columns
   */
  drawRow(context, row, y, cell, gap, columns) {
    const start = row * columns;
    const end = Math.min(this.states.length, start + columns);
    let runStart = start;
    for (let i = start + 1; i <= end; i++) {
      if (i < end && this.states[i] === this.states[runStart]) continue;
      context.fillStyle = (STATES[this.states[runStart] ?? "."] ?? STATES["."])?.colour ?? "#000";
      if (gap === 0) {
        context.fillRect((runStart - start) * cell, y, (i - runStart) * cell, cell);
      } else {
        for (let j = runStart; j < i; j++)
          context.fillRect((j - start) * cell, y, cell - gap, cell - gap);
      }
      runStart = i;
    }
  }

  /** @param {CanvasRenderingContext2D} context @param {number} top */
  drawSelection(context, top) {
    if (this.selected === null || this.selected >= this.states.length) return;
    const { cell, columns } = this.layout;
    const x = (this.selected % columns) * cell;
    const y = Math.floor(this.selected / columns) * cell - top;
    context.strokeStyle = "#111827";
    context.lineWidth = 2;
    context.strokeRect(x - 1, y - 1, cell + 1, cell + 1);
  }

  /**
   * The task under the pointer, or `null`.
   * @param {MouseEvent} event
   */
  indexAt(event) {
    const { cell, columns } = this.layout;
    const bounds = this.canvas.getBoundingClientRect();
    const column = Math.floor((event.clientX - bounds.left) / cell);
    const row = Math.floor((event.clientY - bounds.top + this.scroller.scrollTop) / cell);
    const index = row * columns + column;
    return column < columns && index >= 0 && index < this.states.length ? index : null;
  }

  /** @param {MouseEvent} event */
  hover(event) {
    const index = this.indexAt(event);
    if (index === null) {
      this.tip.hidden = true;
      return;
    }
    const state = STATES[this.states[index] ?? "."]?.name ?? "no report yet";
    this.tip.textContent = `task ${count(index)}: ${state}`;
    this.tip.hidden = false;
    const bounds = this.element.getBoundingClientRect();
    this.tip.style.left = `${event.clientX - bounds.left + 12}px`;
    this.tip.style.top = `${event.clientY - bounds.top + 12}px`;
  }

  destroy() {
    this.resize.disconnect();
  }
}

/** A state's character, then how many tasks in a row have it (none: one). */
const RUN = /([.dex])(\d*)/g;

/**
 * Each task's state, one character per task, from the server's runs (`d1000.24e`: 1,000 done,
 * 24 without a report, one error).
 * @param {string} runs
 */
export function statesOfRuns(runs) {
  /** @type {string[]} */
  const parts = [];
  for (const [, state, length] of runs.matchAll(RUN)) {
    parts.push((state ?? ".").repeat(length ? Number(length) : 1));
  }
  return parts.join("");
}

/**
 * The grid's legend, with how many tasks are in each state.
 * @param {string} runs the states as the server's runs
 */
export function gridLegend(runs) {
  /** @type {Record<string, number>} */
  const tally = {};
  for (const [, state = ".", length] of runs.matchAll(RUN)) {
    tally[state] = (tally[state] ?? 0) + (length ? Number(length) : 1);
  }
  return h(
    "ul",
    { class: "legend" },
    ...Object.entries(STATES).map(([key, { colour, name }]) => {
      const swatch = h("span", { class: "swatch" });
      swatch.style.background = colour;
      return h("li", {}, swatch, `${name} ${count(tally[key] ?? 0)}`);
    }),
  );
}
