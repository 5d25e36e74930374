// @ts-check
import { getJson } from "./api.js";
import { h, notRecorded, replace } from "./dom.js";
import { bytes, count, duration } from "./format.js";

/** @typedef {import("../src/internal/api-types.js").TaskDetail} TaskDetail */

/**
 * @param {string} label
 * @param {import("./dom.js").Child} value
 */
function fact(label, value) {
  return h("div", { class: "fact" }, h("dt", {}, label), h("dd", {}, value));
}

/** @param {TaskDetail} task */
function runFacts(task) {
  if (!task.run) {
    return task.state === "pending"
      ? h("p", { class: "muted" }, "No report yet.")
      : notRecorded("Run time, host and peak memory");
  }
  return h(
    "dl",
    { class: "facts" },
    fact("run time", duration(task.run.runSeconds)),
    fact("host", task.run.host ?? "—"),
    fact("peak memory", bytes(task.run.peakMemoryBytes)),
    fact("attempt", task.run.attempt === null ? "—" : String(task.run.attempt)),
  );
}

/** @param {TaskDetail} task */
function logOf(task) {
  if (task.log === "not recorded") return notRecorded("Output");
  if (task.log === null) return h("p", { class: "muted" }, "No output recorded for it.");
  return h(
    "div",
    { class: "logs" },
    h("h4", {}, "output (stdout and stderr)"),
    task.log.cutBytes > 0
      ? h(
          "p",
          { class: "muted" },
          `The first ${bytes(task.log.cutBytes)} were cut; the end is kept.`,
        )
      : null,
    h("pre", { class: "log" }, task.log.text || "(nothing)"),
  );
}

/** @param {TaskDetail} task */
function taskBody(task) {
  return [
    h(
      "h3",
      {},
      `Task ${count(task.index)} `,
      h("span", { class: `badge task-${task.state}` }, task.state),
    ),
    h(
      "p",
      { class: "args" },
      h("span", { class: "label" }, "arguments "),
      h("code", {}, task.args),
    ),
    task.result !== null
      ? h(
          "p",
          { class: "result" },
          h("span", { class: "label" }, "result "),
          h("code", {}, task.result),
        )
      : null,
    task.error !== null ? h("pre", { class: "traceback" }, task.error) : null,
    runFacts(task),
    logOf(task),
  ];
}

/**
 * The panel of the task selected in the grid or in a group of errors.
 * @param {number} request
 */
export function taskPanel(request) {
  const element = h(
    "div",
    { class: "task-panel" },
    h(
      "p",
      { class: "muted" },
      "Select a task in the grid to see its arguments, result or traceback.",
    ),
  );
  /** @type {number | null} */
  let shown = null;
  return {
    element,
    /** @param {number} index */
    async show(index) {
      shown = index;
      try {
        /** @type {TaskDetail} */
        const task = await getJson(`/api/requests/${request}/tasks/${index}`);
        if (shown === index) replace(element, ...taskBody(task));
      } catch (error) {
        replace(element, h("p", { class: "error-text" }, `Task ${index}: ${String(error)}`));
      }
    },
    /** Reads the shown task again (its state may have changed). */
    refresh() {
      if (shown !== null) void this.show(shown);
    },
  };
}
