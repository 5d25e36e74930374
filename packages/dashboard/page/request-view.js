// @ts-check
import { ApiError, getJson, getSession, postAction } from "./api.js";
import { histogramChart, rateChart, waitVsRunChart } from "./charts.js";
import { confirmAction } from "./confirm.js";
import { card, h, notRecorded, replace } from "./dom.js";
import { attemptsTable, deadGroups, errorGroups } from "./failures.js";
import { bytes, count, dateTime, duration, rate } from "./format.js";
import { listen } from "./live.js";
import { progressBar, setProgress, stateBadge } from "./progress.js";
import { gridLegend, statesOfRuns, TaskGrid } from "./task-grid.js";
import { taskPanel } from "./task-panel.js";

/**
 * @typedef {import("../src/internal/api-types.js").RequestDetail} RequestDetail
 * @typedef {import("../src/internal/api-types.js").RequestDetailUnchanged} RequestDetailUnchanged
 * @typedef {import("../src/internal/api-types.js").RequestRow} RequestRow
 * @typedef {import("../src/internal/api-types.js").TimingView} TimingView
 * @typedef {import("../src/internal/api-types.js").Session} Session
 */

/** How often a request in progress is read again without an event (its rate chart moves). */
const REFRESH_MS = 5_000;
/**
 * The least time between two reads of the request's view (its grid and charts are drawn again
 * at most this often); the counts at the top follow every event, and a new error is read at once.
 */
const MIN_READ_GAP_MS = 2_000;

/**
 * @param {string} label
 * @param {import("./dom.js").Child} value
 * @param {string} [kind]
 */
function stat(label, value, kind = "") {
  return h(
    "div",
    { class: `stat ${kind}` },
    h("div", { class: "stat-value" }, value),
    h("div", { class: "stat-label" }, label),
  );
}

/** @param {RequestDetail} detail */
function headFacts(detail) {
  const row = detail.request;
  /** @type {[string, string][]} */
  const facts = [
    ["created", dateTime(row.createdAt)],
    ["host", row.host ?? "—"],
    ["scheduler", row.scheduler ?? "—"],
    ["job", row.jobId ?? "—"],
    ...Object.entries(detail.facts),
  ];
  return h(
    "dl",
    { class: "head-facts" },
    ...facts.map(([label, value]) =>
      h("div", { class: "fact" }, h("dt", {}, label), h("dd", {}, value)),
    ),
  );
}

/**
 * The request's numbers: a label, the value's text and its kind, in order.
 * @param {RequestRow} row
 * @returns {[string, string, string][]}
 */
function numbersOf(row) {
  return [
    ["done", count(row.done), "done"],
    ["failed", count(row.failed), "failed"],
    ["no report yet", count(row.pending), "pending"],
    ["tasks", count(row.tasks), ""],
    ["throughput", rate(row.throughput), ""],
    ["ETA", duration(row.etaSeconds), ""],
  ];
}

/** @param {RequestRow} row */
function statsOf(row) {
  return h(
    "div",
    { class: "stats" },
    ...numbersOf(row).map(([label, value, kind]) => stat(label, value, kind)),
  );
}

/**
 * Sets the numbers of {@link statsOf} to a request's, in place.
 * @param {HTMLElement} stats
 * @param {RequestRow} row
 */
function setStats(stats, row) {
  const values = stats.querySelectorAll(".stat-value");
  numbersOf(row).forEach(([, value], at) => {
    const element = values[at];
    if (element && element.textContent !== value) element.textContent = value;
  });
}

/**
 * The request's action buttons, each after a confirmation; `note` says how the last one went.
 * @param {RequestRow} row
 * @param {Session} session
 * @param {{ note: HTMLElement, reload: () => void }} view
 */
function actionsOf(row, session, { note, reload }) {
  /**
   * @param {"cancel" | "retry-failed"} action
   * @param {{ title: string, text: string, confirm: string }} question
   * @param {string} done
   */
  const run = async (action, question, done) => {
    if (!(await confirmAction(question))) return;
    note.textContent = "…";
    note.classList.remove("error-text");
    try {
      await postAction(row.id, action);
      note.textContent = done;
    } catch (error) {
      note.textContent = error instanceof ApiError ? error.message : String(error);
      note.classList.add("error-text");
    }
    reload();
  };
  const buttons = h("div", { class: "actions" });
  if (session.actions.cancel && row.state === "running") {
    const text = `Its job is cancelled on ${row.host ?? "its cluster"}; tasks that have not reported are lost.`;
    const question = { title: `Cancel request #${row.id}?`, text, confirm: "Cancel request" };
    buttons.append(
      h(
        "button",
        {
          type: "button",
          class: "danger",
          "data-action": "cancel",
          onclick: () => void run("cancel", question, "Cancelled."),
        },
        "Cancel request",
      ),
    );
  }
  if (session.actions.retryFailed && row.failed > 0) {
    const text = `Its ${count(row.failed)} failed ${row.failed === 1 ? "task runs" : "tasks run"} again as a new job.`;
    const question = {
      title: `Run the failed tasks of request #${row.id} again?`,
      text,
      confirm: "Retry failed",
    };
    buttons.append(
      h(
        "button",
        {
          type: "button",
          "data-action": "retry-failed",
          onclick: () => void run("retry-failed", question, "Retry submitted."),
        },
        "Retry failed tasks",
      ),
    );
  }
  buttons.append(note);
  return buttons;
}

/** @param {RequestRow} row */
function headLine(row) {
  return h(
    "div",
    { class: "head-line" },
    h("a", { href: "#/", class: "back" }, "← requests"),
    h("h1", {}, h("span", { class: "muted" }, `#${row.id} `), h("code", {}, row.name)),
    stateBadge(row),
  );
}

/**
 * The top of the page in `box`: name, state, facts, progress, numbers, actions. Its counts
 * change on every event: they are set in place, and the other parts are made again only when
 * what they show changed, so that an event costs the browser little to lay out and draw.
 * @param {HTMLElement} box
 * @param {{ note: HTMLElement, reload: () => void }} view
 */
function requestHead(box, view) {
  /** @type {{ line: HTMLElement, facts: HTMLElement, progress: HTMLElement, stats: HTMLElement, actions: HTMLElement } | undefined} */
  let shown;
  /** @type {Record<string, string>} */
  const keys = {};
  /**
   * @param {"line" | "facts" | "actions"} part
   * @param {unknown} value
   * @param {() => HTMLElement} build
   */
  const renew = (part, value, build) => {
    const key = JSON.stringify(value);
    if (!shown || keys[part] === key) return;
    keys[part] = key;
    const next = build();
    shown[part].replaceWith(next);
    shown[part] = next;
  };
  /** @param {RequestDetail} detail @param {Session} session */
  return (detail, session) => {
    const row = detail.request;
    if (!shown || shown.line.parentElement !== box) {
      shown = {
        line: headLine(row),
        facts: headFacts(detail),
        progress: progressBar(row),
        stats: statsOf(row),
        actions: actionsOf(row, session, view),
      };
      for (const part of Object.keys(keys)) delete keys[part];
      replace(box, shown.line, shown.facts, shown.progress, shown.stats, shown.actions);
    }
    renew("line", [row.id, row.name, row.state, row.failed > 0], () => headLine(row));
    renew("facts", [row.createdAt, row.host, row.scheduler, row.jobId, detail.facts], () =>
      headFacts(detail),
    );
    renew("actions", [row.state, row.failed > 0, session.actions], () =>
      actionsOf(row, session, view),
    );
    setProgress(shown.progress, row);
    setStats(shown.stats, row);
  };
}

/**
 * The slowest tasks as a table.
 * @param {TimingView} timing
 * @param {(index: number) => void} onSelect
 */
function slowestTable(timing, onSelect) {
  if (timing.slowest.length === 0) return h("p", { class: "muted" }, "No task has finished yet.");
  return h(
    "table",
    { class: "slowest" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", {}, "task"),
        h("th", {}, "run time"),
        h("th", {}, "host"),
        h("th", {}, "peak memory"),
      ),
    ),
    h(
      "tbody",
      {},
      ...timing.slowest.map((run) =>
        h(
          "tr",
          {},
          h(
            "td",
            {},
            h(
              "button",
              { class: "link", type: "button", onclick: () => onSelect(run.index) },
              String(run.index),
            ),
          ),
          h("td", { class: "numbers" }, duration(run.runSeconds)),
          h("td", {}, run.host ?? "—"),
          h("td", { class: "numbers" }, bytes(run.peakMemoryBytes)),
        ),
      ),
    ),
  );
}

/**
 * The cards of what the store records of task runs: charts and a table, or why there are none.
 * They are made once; each view read updates them (a chart's data, not a new chart).
 * @param {(index: number) => void} onSelect
 */
function timingCards(onSelect) {
  const boxes = { histogram: h("div"), slowest: h("div"), waitVsRun: h("div") };
  /** @type {ReturnType<typeof histogramChart> | undefined} */
  let histogram;
  /** @type {ReturnType<typeof waitVsRunChart> | undefined} */
  let waitVsRun;
  return {
    elements: [
      card("Run times", boxes.histogram),
      card("Slowest tasks", boxes.slowest),
      card("Queue wait vs run time", boxes.waitVsRun),
    ],
    /** @param {RequestDetail} detail */
    update({ timing, factsRecorded }) {
      /** @param {string} what */
      const missing = (what) =>
        factsRecorded
          ? h("p", { class: "muted" }, "No task has reported when it ran yet.")
          : notRecorded(what);
      histogram = chartIn(boxes.histogram, histogram, timing?.histogram, histogramChart, () =>
        missing("Task run times"),
      );
      waitVsRun = chartIn(boxes.waitVsRun, waitVsRun, timing?.waitVsRun, waitVsRunChart, () =>
        missing("Task start times"),
      );
      renderIfChanged(boxes.slowest, [timing?.slowest, factsRecorded], () =>
        timing ? slowestTable(timing, onSelect) : missing("Task run times"),
      );
    },
    destroy() {
      histogram?.destroy();
      waitVsRun?.destroy();
    },
  };
}

/**
 * Shows `data` in `box` as the chart `make` draws, updating the chart already there, or says
 * why there is none (`empty`); returns the chart shown.
 * @template D
 * @template {{ element: HTMLElement, update(data: D): void, destroy(): void }} C
 * @param {HTMLElement} box
 * @param {C | undefined} shown
 * @param {D | null | undefined} data
 * @param {(data: D) => C} make
 * @param {() => import("./dom.js").Child} empty
 * @returns {C | undefined}
 */
function chartIn(box, shown, data, make, empty) {
  if (data === null || data === undefined) {
    shown?.destroy();
    renderIfChanged(box, "empty", empty);
    return undefined;
  }
  shownJson.delete(box);
  if (shown) {
    shown.update(data);
    return shown;
  }
  const chart = make(data);
  replace(box, chart.element);
  return chart;
}

/** @param {number} seconds */
function binText(seconds) {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${seconds / 60} min`;
  return `${seconds / 3600} h`;
}

/**
 * The words above the reports-per-second chart, and whether there is a chart to show (none
 * when nothing was counted of a request that is over).
 * @param {RequestDetail} detail
 * @returns {{ text: string, chart: boolean, recorded: boolean }}
 */
function rateNote({ rate, request, factsRecorded }) {
  const noReport = request.done + request.failed === 0;
  if (rate.from === "reports" || (factsRecorded && noReport)) {
    const text =
      rate.binSeconds > 1
        ? `By when each task ended, averaged over ${binText(rate.binSeconds)}.`
        : "By when each task ended.";
    return { text, chart: true, recorded: true };
  }
  const chart = rate.t.length > 0 || request.state === "running";
  const why = factsRecorded
    ? "no report tells when its task ended"
    : "this store records no report times";
  const text = chart ? `Counted while the dashboard watched: ${why}.` : `Not counted: ${why}.`;
  return { text, chart, recorded: factsRecorded };
}

/** @param {{ text: string, chart: boolean, recorded: boolean }} note */
function rateNoteElement(note) {
  return note.chart || note.recorded
    ? h("p", { class: "muted rate-note" }, note.text)
    : notRecorded("Report times");
}

/**
 * Replaces an element's content with `build(value)` only when `value` changed since the last
 * time, so that what a person opened or chose there stays as it was.
 * @template T
 * @param {HTMLElement} element
 * @param {T} value
 * @param {(value: T) => import("./dom.js").Child} build
 */
function renderIfChanged(element, value, build) {
  const json = JSON.stringify(value);
  if (shownJson.get(element) === json) return;
  shownJson.set(element, json);
  replace(element, build(value));
}

/** @type {WeakMap<HTMLElement, string>} */
const shownJson = new WeakMap();

/**
 * Reads again at most once at a time, and once more if asked meanwhile.
 * @param {() => Promise<void>} load
 */
function throttled(load) {
  let loading = false;
  let again = false;
  const run = () => {
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    load().finally(() => {
      loading = false;
      if (again) {
        again = false;
        setTimeout(run, 200);
      }
    });
  };
  return run;
}

/**
 * Reads at most once every `gapMs` (`soon`), or at once (`now`), and never while the page is
 * hidden: a read asked for then happens when it shows again.
 * @param {() => void} read
 * @param {number} gapMs
 */
function spacedReads(read, gapMs) {
  let last = Number.NEGATIVE_INFINITY;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  let missed = false;
  const now = () => {
    clearTimeout(timer);
    timer = undefined;
    if (document.hidden) {
      missed = true;
      return;
    }
    last = performance.now();
    read();
  };
  const soon = () => {
    if (timer !== undefined) return;
    const wait = last + gapMs - performance.now();
    if (wait <= 0) now();
    else timer = setTimeout(now, wait);
  };
  const onVisibility = () => {
    if (!document.hidden && missed) {
      missed = false;
      now();
    }
  };
  document.addEventListener("visibilitychange", onVisibility);
  return {
    now,
    soon,
    stop() {
      clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisibility);
    },
  };
}

/**
 * One request's page, kept live.
 * @param {HTMLElement} main
 * @param {number} id
 */
export function requestView(main, id) {
  const panel = taskPanel(id);
  const grid = new TaskGrid((index) => void panel.show(index));
  const parts = {
    head: h("section", { class: "card request-head" }, h("p", { class: "muted" }, "Loading…")),
    legend: h("div"),
    errors: h("div"),
    dead: h("div"),
    attempts: h("div"),
    source: h("div"),
    timing: h("div", { class: "timing-cards" }),
  };
  const rates = rateChart({ t: [], results: [], errors: [], binSeconds: 1, from: "reports" });
  const rateNoteBox = h("div");
  const rateCard = card("Reports per second", rateNoteBox, rates.element);
  rateCard.classList.add("rate-card");
  const note = h("span", { class: "action-note", role: "status" });
  const select = (/** @type {number} */ index) => grid.select(index);
  replace(
    main,
    parts.head,
    h(
      "div",
      { class: "columns" },
      h("section", { class: "card grid-card" }, h("h2", {}, "Tasks"), parts.legend, grid.element),
      h("section", { class: "card" }, h("h2", {}, "Selected task"), panel.element),
    ),
    rateCard,
    parts.timing,
    card("Errors", parts.errors),
    h(
      "div",
      { class: "columns" },
      card("Dead tasks", parts.dead),
      card("Attempts", parts.attempts),
    ),
    parts.source,
  );
  const timing = timingCards(select);
  replace(parts.timing, ...timing.elements);
  /** @type {RequestDetail | undefined} The last whole view read. */
  let shown;
  /** @type {Session | undefined} */
  let shownSession;
  const load = async () => {
    try {
      const since = shown ? `?since=${encodeURIComponent(shown.viewVersion)}` : "";
      const [answer, session] = await Promise.all([
        getJson(`/api/requests/${id}${since}`),
        getSession(),
      ]);
      const detail = /** @type {RequestDetail | RequestDetailUnchanged} */ (answer);
      shownSession = session;
      if (detail.unchanged && shown) renderHeadline({ ...shown, ...detail, unchanged: false });
      else if (!detail.unchanged) render(detail);
    } catch (error) {
      replace(
        parts.head,
        h(
          "p",
          { class: "error-text" },
          error instanceof ApiError && error.status === 404
            ? `There is no request #${id} in this store.`
            : String(error),
        ),
      );
    }
  };
  const read = throttled(load);
  const reads = spacedReads(read, MIN_READ_GAP_MS);
  const reload = () => reads.now();
  const showHead = requestHead(parts.head, { note, reload });
  /** @type {RequestDetail["rate"] | undefined} */
  let shownRates;
  /** The top, the rates and the attempts: what changes on every read. @param {RequestDetail} detail */
  const renderHeadline = (detail) => {
    shown = detail;
    if (!shownSession) return;
    showHead(detail, shownSession);
    const shownRate = rateNote(detail);
    renderIfChanged(rateNoteBox, shownRate, rateNoteElement);
    rates.element.hidden = !shownRate.chart;
    // An event brings counts only: the series it carries is the last read's, drawn already.
    if (detail.rate !== shownRates) rates.update(detail.rate);
    shownRates = detail.rate;
    renderIfChanged(parts.attempts, detail.attempts, attemptsTable);
    const title = `#${id} ${detail.request.name} · Sheepdog`;
    if (document.title !== title) document.title = title;
  };
  /** @param {RequestDetail} detail */
  const render = (detail) => {
    renderHeadline(detail);
    grid.setStates(statesOfRuns(detail.stateRuns));
    replace(parts.legend, gridLegend(detail.stateRuns));
    timing.update(detail);
    renderIfChanged(parts.errors, [detail.errors, detail.moreErrorGroups], () =>
      errorGroups(detail.errors, detail.moreErrorGroups, select),
    );
    renderIfChanged(parts.dead, detail.dead, (dead) => deadGroups(dead, select));
    if (detail.source !== null && parts.source.childElementCount === 0) {
      replace(
        parts.source,
        card(
          "Function",
          h(
            "details",
            {},
            h("summary", {}, "Python source"),
            h("pre", { class: "source" }, detail.source),
          ),
        ),
      );
    }
    panel.refresh();
  };
  const stop = listen({
    onConnected: reload,
    onChanged(event) {
      const row = event.changed.find((changed) => changed.id === id);
      if (!row) return;
      const newError = shown !== undefined && row.failed !== shown.request.failed;
      // The counts at once (no read); the view when it is due, or now for a new error.
      if (shown && row.state === "running" && !document.hidden) {
        renderHeadline({ ...shown, request: row });
      }
      if (newError) reads.now();
      else reads.soon();
    },
  });
  const timer = setInterval(() => reads.soon(), REFRESH_MS);
  reload();
  return {
    destroy() {
      stop();
      reads.stop();
      clearInterval(timer);
      grid.destroy();
      rates.destroy();
      timing.destroy();
    },
  };
}
