// @ts-check
import { getJson } from "./api.js";
import { card, h, replace } from "./dom.js";
import { ago, count, dateTime, duration, rate } from "./format.js";
import { listen } from "./live.js";
import { progressBar, stateBadge } from "./progress.js";

/**
 * @typedef {import("../src/internal/api-types.js").RequestRow} RequestRow
 * @typedef {import("../src/internal/api-types.js").RequestList} RequestList
 */

/** How often the list is read again, for throughputs and times (events bring the counts). */
const REFRESH_MS = 10_000;

/**
 * One request's line.
 * @param {RequestRow} row
 * @param {number} now
 */
function requestLine(row, now) {
  const open = () => {
    location.hash = `#/requests/${row.id}`;
  };
  const where = [row.host, row.scheduler && `${row.scheduler}${row.jobId ? ` ${row.jobId}` : ""}`]
    .filter(Boolean)
    .join(" · ");
  return h(
    "tr",
    { class: "request-line", "data-id": row.id, onclick: open, tabindex: 0 },
    h("td", { class: "id" }, `#${row.id}`),
    h("td", { class: "name" }, h("a", { href: `#/requests/${row.id}` }, h("code", {}, row.name))),
    h("td", { title: dateTime(row.createdAt) }, ago(row.createdAt, now)),
    h("td", { class: "where" }, where || "—"),
    h("td", { class: "bar-cell" }, progressBar(row)),
    h(
      "td",
      { class: "numbers" },
      h("span", { class: "done-count" }, count(row.done)),
      " / ",
      h("span", { class: "failed-count" }, count(row.failed)),
      " / ",
      count(row.tasks),
    ),
    h("td", { class: "numbers" }, rate(row.throughput)),
    h("td", { class: "numbers" }, duration(row.etaSeconds)),
    h("td", {}, stateBadge(row)),
  );
}

/**
 * The list of every request, newest first, kept live.
 * @param {HTMLElement} main
 */
export function listView(main) {
  /** @type {Map<number, RequestRow>} */
  const rows = new Map();
  let now = Date.now();
  const body = h("tbody");
  const empty = h("p", { class: "muted" }, "No requests in this store yet.");
  const table = h(
    "table",
    { class: "requests" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ...[
          "",
          "function",
          "created",
          "where",
          "progress",
          "done / failed / total",
          "rate",
          "ETA",
          "state",
        ].map((title) => h("th", {}, title)),
      ),
    ),
    body,
  );
  replace(main, card("Requests", table, empty));
  const render = () => {
    const sorted = [...rows.values()].sort((a, b) => b.id - a.id);
    body.replaceChildren(...sorted.map((row) => requestLine(row, now)));
    empty.hidden = rows.size > 0;
  };
  const load = async () => {
    /** @type {RequestList} */
    const list = await getJson("/api/requests");
    now = list.now;
    rows.clear();
    for (const row of list.requests) rows.set(row.id, row);
    render();
  };
  const stop = listen({
    onConnected: () => void load(),
    onChanged(event) {
      now = event.now;
      for (const row of event.changed) rows.set(row.id, row);
      render();
    },
  });
  const timer = setInterval(() => void load(), REFRESH_MS);
  void load();
  document.title = "Requests · Sheepdog";
  return {
    destroy() {
      stop();
      clearInterval(timer);
    },
  };
}
