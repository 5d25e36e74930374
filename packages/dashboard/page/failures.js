// @ts-check
import { h } from "./dom.js";
import { count } from "./format.js";

/**
 * @typedef {import("../src/internal/api-types.js").ErrorGroup} ErrorGroup
 * @typedef {import("../src/internal/api-types.js").DeadGroup} DeadGroup
 * @typedef {import("../src/internal/api-types.js").FailedTask} FailedTask
 * @typedef {import("../src/internal/api-types.js").Attempt} Attempt
 */

/** How many task numbers a group lists before "and N more". */
const LISTED_TASKS = 40;

/**
 * Task numbers that select their task when clicked.
 * @param {number[]} indices
 * @param {number} total
 * @param {(index: number) => void} onSelect
 */
function taskLinks(indices, total, onSelect) {
  const shown = indices.slice(0, LISTED_TASKS);
  const list = h("p", { class: "task-links" }, "tasks ");
  for (const index of shown) {
    list.append(
      h(
        "button",
        { class: "link", type: "button", "data-task": index, onclick: () => onSelect(index) },
        String(index),
      ),
      " ",
    );
  }
  if (total > shown.length)
    list.append(h("span", { class: "muted" }, `and ${count(total - shown.length)} more`));
  return list;
}

/**
 * A group's examples: buttons to switch between them, and the one shown (arguments and text).
 * @param {FailedTask[]} examples
 * @param {string} textLabel
 */
function examplesOf(examples, textLabel) {
  const shown = h("div", { class: "example" });
  /** @param {FailedTask} example */
  const show = (example) => {
    shown.replaceChildren(
      h(
        "p",
        { class: "args" },
        h("span", { class: "label" }, `task ${example.index} arguments `),
        h("code", {}, example.args),
      ),
      h("pre", { class: "traceback", "aria-label": textLabel }, example.error),
    );
  };
  const first = examples[0];
  if (first) show(first);
  if (examples.length < 2) return shown;
  const tabs = h("p", { class: "example-tabs" }, h("span", { class: "label" }, "examples "));
  for (const example of examples) {
    tabs.append(
      h(
        "button",
        { class: "link", type: "button", onclick: () => show(example) },
        `task ${example.index}`,
      ),
      " ",
    );
  }
  return h("div", {}, tabs, shown);
}

/**
 * The errors tasks raised, one collapsible group per exception type and message.
 * @param {ErrorGroup[]} groups
 * @param {number} more groups not listed
 * @param {(index: number) => void} onSelect
 */
export function errorGroups(groups, more, onSelect) {
  if (groups.length === 0) return h("p", { class: "muted" }, "No task raised an error.");
  const list = h("div", { class: "groups" });
  groups.forEach((group, i) => {
    const summary = h(
      "summary",
      {},
      h("span", { class: "exception" }, group.type),
      group.message ? h("span", { class: "message" }, `: ${group.message}`) : null,
      h(
        "span",
        { class: "pill error" },
        `${count(group.count)} ${group.count === 1 ? "task" : "tasks"}`,
      ),
    );
    list.append(
      h(
        "details",
        { class: "group error-group", open: i === 0 },
        summary,
        taskLinks(group.indices, group.count, onSelect),
        examplesOf(group.examples, "traceback"),
      ),
    );
  });
  if (more > 0) list.append(h("p", { class: "muted" }, `${count(more)} smaller groups not shown.`));
  return list;
}

/**
 * The tasks that ended without reporting, grouped by the scheduler's kind and cause.
 * @param {DeadGroup[]} groups
 * @param {(index: number) => void} onSelect
 */
export function deadGroups(groups, onSelect) {
  if (groups.length === 0) return h("p", { class: "muted" }, "No task died without reporting.");
  const list = h("div", { class: "groups" });
  groups.forEach((group, i) => {
    const summary = h(
      "summary",
      {},
      h("span", { class: "pill dead" }, group.kind),
      h("span", { class: "cause" }, ` ${group.cause}`),
      h(
        "span",
        { class: "pill dead-count" },
        `${count(group.count)} ${group.count === 1 ? "task" : "tasks"}`,
      ),
    );
    list.append(
      h(
        "details",
        { class: "group dead-group", open: i === 0 },
        summary,
        taskLinks(group.indices, group.count, onSelect),
        examplesOf(group.examples, "cause"),
      ),
    );
  });
  return list;
}

/**
 * The request's attempts: its first run and each retry of failed tasks.
 * @param {Attempt[]} attempts
 */
export function attemptsTable(attempts) {
  if (attempts.length === 0) return h("p", { class: "muted" }, "No job submitted for it.");
  return h(
    "table",
    { class: "attempts" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ...["attempt", "job", "scheduler", "tasks run", "results", "errors"].map((title) =>
          h("th", {}, title),
        ),
      ),
    ),
    h(
      "tbody",
      {},
      ...attempts.map((attempt) =>
        h(
          "tr",
          {},
          h("td", {}, attempt.attempt === 0 ? "first run" : `retry ${attempt.attempt}`),
          h("td", {}, attempt.jobId ?? "—"),
          h("td", {}, attempt.scheduler ?? "—"),
          h("td", { class: "numbers" }, count(attempt.tasks)),
          h(
            "td",
            { class: "numbers done-count" },
            attempt.results === null ? "—" : count(attempt.results),
          ),
          h(
            "td",
            { class: "numbers failed-count" },
            attempt.errors === null ? "—" : count(attempt.errors),
          ),
        ),
      ),
    ),
  );
}
