import type { RequestId, RequestSummary, Store, StoreReport, TaskError } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type {
  DeadGroup,
  ErrorGroup,
  RateSeries,
  RequestDetail,
  RequestDetailUnchanged,
  RequestHeadline,
  RequestRow,
  TaskDetail,
  TimingView,
} from "./api-types.js";
import { errorCause, groupErrors } from "./error-groups.js";
import { FactsTally } from "./facts-tally.js";
import type { ReportTimes } from "./report-times.js";
import { pickleRepr } from "./repr.js";
import { attemptsOf, factsOf, resetsOf } from "./request-meta.js";
import type { RequestRows } from "./request-rows.js";
import type { RequestWatch } from "./request-watch.js";
import { source } from "./source.js";
import type { AttemptTally } from "./task-facts.js";
import {
  readFactsRange,
  readLog,
  readRun,
  recordsFacts,
  withReportsByAttempt,
} from "./task-facts.js";
import { STATE, STATE_NAMES, stateRuns } from "./task-states.js";
import { ViewCache } from "./view-cache.js";

/**
 * What a request's page needs of its tasks' facts, taken from the request's {@link FactsTally}
 * (which reads only the reports that are new to it): read once at a time, and reused while it
 * is young (see {@link ViewCache}); the page's headline counts come from each read's fresh
 * counts, not from it.
 */
interface FactsView {
  version: number;
  /** Each task's state by its report (`STATE`), before the errors' own kinds are set. */
  states: Uint8Array;
  /** Whether the store records facts. */
  factsRecorded: boolean;
  /** How many reports came from each attempt, `null` when the store records no facts. */
  attempts: AttemptTally | null;
  timing: TimingView | null;
  /** When the reports came, `null` where the store records no report's end. */
  times: ReportTimes | null;
}

/** A request's errors, read again when a new one comes (without reading the facts again). */
interface ErrorsView {
  version: number;
  errorsByIndex: Map<number, TaskError>;
  errors: ErrorGroup[];
  moreErrorGroups: number;
  dead: DeadGroup[];
  /** Each erring task's index and state (error or dead), in pairs. */
  marks: Uint32Array;
}

/** A facts view with its errors view's states set: what a version of the page's view shows. */
interface TaskView
  extends Omit<FactsView, "version" | "states">,
    Omit<ErrorsView, "version" | "marks"> {
  version: string;
  /** Each task's state as runs (see `TaskStateRuns`). */
  stateRuns: string;
  /** Each task's state (`STATE`), the errors' kinds set. */
  states: Uint8Array;
}

/** A request's tally of facts, and the retries it was started after (see `resetsOf`). */
interface KeptTally {
  resets: string;
  tally: FactsTally;
}

/** How many requests' task views are kept. */
const KEPT_VIEWS = 8;

/** Builds a request's page (`/api/requests/:id`) and a task's (`.../tasks/:index`). */
export class RequestDetails {
  readonly #store: Store;
  readonly #watch: RequestWatch;
  readonly #rows: RequestRows;
  readonly #factsViews: ViewCache<FactsView>;
  readonly #errorsViews: ViewCache<ErrorsView>;
  /** The last view of each request put together from its facts and errors views. */
  readonly #taskViews = new Map<string, TaskView>();
  /** Each request's facts as taken in so far (the requests of the kept views). */
  readonly #tallies = new Map<string, KeptTally>();
  /** Tells this dashboard's versions from another's (one that ran on the same port before). */
  readonly #epoch = Date.now().toString(36);
  #builds = 0;
  /** Stops taking in the reports this process's store writes (see {@link #takeIn}). */
  readonly close: () => void;

  /** `clock` (ms, `performance.now` by default) times the reuse of task views. */
  constructor(store: Store, watch: RequestWatch, rows: RequestRows, clock?: () => number) {
    this.#store = store;
    this.#watch = watch;
    this.#rows = rows;
    const timed = clock ? { clock } : {};
    this.#factsViews = new ViewCache<FactsView>({ kept: KEPT_VIEWS, ...timed });
    // Every answer holds every error its counts name (the page shows a new one within a second),
    // read at most once per five times as long as a read of them takes.
    this.#errorsViews = new ViewCache<ErrorsView>({
      kept: KEPT_VIEWS,
      minReuseMs: 0,
      reuseFactor: 5,
      exact: true,
      ...timed,
    });
    const stop = store.watchReports?.((id, reports) => this.#takeIn(id, reports));
    this.close = stop ?? (() => {});
  }

  /**
   * Takes reports that the store just stored into their request's tally, when one is kept (its
   * page was read): a read of the view then reads back only what other processes stored. A
   * dashboard in the process that runs the map reads almost nothing back.
   */
  #takeIn(id: RequestId, reports: readonly StoreReport[]): void {
    const kept = this.#tallies.get(String(id));
    if (!kept) return;
    for (const report of reports) kept.tally.takeIn(report);
  }

  /**
   * Request `id`'s page; without its task view while that is still version `since`. Rejects
   * with `REQUEST_NOT_FOUND` for an unknown id.
   */
  async detail(
    id: RequestId,
    now: number,
    since?: string,
  ): Promise<RequestDetail | RequestDetailUnchanged> {
    const summary = await this.#summaryOf(id);
    const [fn, view] = await Promise.all([this.#rows.functionOf(id), this.#taskView(summary)]);
    const row = await this.#rows.rowOf(summary, now, view.times);
    const headline: RequestHeadline = {
      request: row,
      attempts: withReportsByAttempt(attemptsOf(summary.meta, summary.tasks), view.attempts),
      rate: this.#rateOf(row, view.times, now),
      factsRecorded: view.factsRecorded,
      facts: factsOf(summary.meta),
      viewVersion: view.version,
      now,
    };
    if (since === view.version) return { ...headline, unchanged: true };
    return {
      ...headline,
      unchanged: false,
      source: fn.source,
      stateRuns: view.stateRuns,
      errors: view.errors,
      moreErrorGroups: view.moreErrorGroups,
      dead: view.dead,
      timing: view.timing,
    };
  }

  /**
   * The request's reports per second: by the end times its store records, else as the watch
   * counted them.
   */
  #rateOf(row: RequestRow, times: ReportTimes | null, now: number): RateSeries {
    if (times) return times.series(now, row.state === "running");
    return (
      this.#watch.history(row.id)?.series(now) ?? {
        t: [],
        results: [],
        errors: [],
        binSeconds: 1,
        from: "watched",
      }
    );
  }

  /** Task `index` of request `id`; rejects with `TASK_NOT_FOUND` outside the request. */
  async task(id: RequestId, index: number): Promise<TaskDetail> {
    const summary = await this.#summaryOf(id);
    if (!Number.isSafeInteger(index) || index < 0 || index >= summary.tasks) {
      throw new SheepdogError("TASK_NOT_FOUND", source, `Request ${id} has no task ${index}.`);
    }
    const view = await this.#taskView(summary);
    const state =
      STATE_NAMES[String.fromCharCode(view.states[index] ?? STATE.pending)] ?? "pending";
    const [[args], result, run, log] = await Promise.all([
      this.#store.getArgs(id, index, 1),
      state === "done" ? this.#resultOf(id, index) : Promise.resolve(null),
      readRun(this.#store, id, index),
      readLog(this.#store, id, index),
    ]);
    return {
      index,
      state,
      args: args ? pickleRepr(args) : "",
      result,
      error: view.errorsByIndex.get(index)?.error ?? null,
      run,
      log: log === undefined ? "not recorded" : log,
    };
  }

  async #resultOf(id: RequestId, index: number): Promise<string | null> {
    if (!this.#store.getResultRange) return null;
    const [bytes] = await this.#store.getResultRange(id, index, 1);
    return bytes ? pickleRepr(bytes) : null;
  }

  /** The request with counts read now (the watch's may be a look old). */
  async #summaryOf(id: RequestId): Promise<RequestSummary> {
    const seen = this.#watch.row(id);
    if (seen) return { ...seen, ...(await this.#store.counts(id)) };
    const [request, counts] = await Promise.all([
      this.#store.getRequest(id),
      this.#store.counts(id),
    ]);
    return { id, createdAt: request.createdAt, meta: request.meta, ...counts };
  }

  /**
   * The request's view: its facts view (reused while young, see {@link ViewCache}) with its
   * errors view (read again when a new error comes), put together once per pair.
   */
  async #taskView(summary: RequestSummary): Promise<TaskView> {
    const key = String(summary.id);
    const meta = JSON.stringify(summary.meta);
    const complete = summary.results + summary.errors >= summary.tasks;
    const [facts, errors] = await Promise.all([
      this.#factsViews.get(
        key,
        { key: `${summary.results}/${summary.errors}`, meta, complete },
        () => this.#readFactsView(summary),
      ),
      this.#errorsViews.get(key, { key: String(summary.errors), meta, complete }, () =>
        this.#readErrorsView(summary),
      ),
    ]);
    const version = `${this.#epoch}.${facts.version}.${errors.version}`;
    const kept = this.#taskViews.get(key);
    if (kept?.version === version) return kept;
    const view = combined(version, facts, errors);
    this.#taskViews.delete(key);
    this.#taskViews.set(key, view);
    for (const old of this.#taskViews.keys()) {
      if (this.#taskViews.size <= KEPT_VIEWS) break;
      this.#taskViews.delete(old);
    }
    return view;
  }

  async #readFactsView(summary: RequestSummary): Promise<FactsView> {
    const { id, tasks } = summary;
    if (!recordsFacts(this.#store)) {
      return {
        version: ++this.#builds,
        states: await this.#statesOfUnreported(id, tasks),
        factsRecorded: false,
        attempts: null,
        timing: null,
        times: null,
      };
    }
    // The meta and counts as stored now: the watch's meta may be older than a retry that reset
    // tasks, and the summary's counts older than reports the tally has taken in since.
    const [{ meta }, counts] = await Promise.all([
      this.#store.getRequest(id),
      this.#store.counts(id),
    ]);
    const tally = this.#tallyOf({ ...summary, ...counts, meta });
    await tally.catchUp(async (start, count) => {
      return (await readFactsRange(this.#store, id, start, count)) ?? [];
    });
    const summarised = tally.summary();
    return {
      version: ++this.#builds,
      states: tally.states.slice(),
      factsRecorded: true,
      attempts: summarised.attempts,
      timing: summarised.timing,
      times: summarised.times,
    };
  }

  /**
   * The request's tally: the one kept, unless a retry reset tasks since it began or it counts
   * more reports than the store now holds; a new one then.
   */
  #tallyOf(summary: RequestSummary): FactsTally {
    const key = String(summary.id);
    const resets = resetsOf(summary.meta);
    const kept = this.#tallies.get(key);
    this.#tallies.delete(key);
    const fits =
      kept?.resets === resets &&
      kept.tally.states.length === summary.tasks &&
      kept.tally.reported <= summary.results + summary.errors;
    const tally = fits ? kept.tally : new FactsTally(summary.tasks, summary.createdAt);
    this.#tallies.set(key, { resets, tally });
    for (const old of this.#tallies.keys()) {
      if (this.#tallies.size <= KEPT_VIEWS) break;
      this.#tallies.delete(old);
    }
    return tally;
  }

  async #readErrorsView(summary: RequestSummary): Promise<ErrorsView> {
    const errors = summary.errors > 0 ? await this.#store.getErrors(summary.id) : [];
    const errorsByIndex = new Map<number, TaskError>();
    const marks = new Uint32Array(errors.length * 2);
    errors.forEach((error, at) => {
      errorsByIndex.set(error.index, error);
      marks[2 * at] = error.index;
      marks[2 * at + 1] = errorCause(error).dead ? STATE.dead : STATE.error;
    });
    return { version: ++this.#builds, errorsByIndex, marks, ...groupErrors(errors) };
  }

  /** The states of a store without facts: done but where `unreported` says pending. */
  async #statesOfUnreported(id: RequestId, tasks: number): Promise<Uint8Array> {
    const states = new Uint8Array(tasks).fill(STATE.done);
    if (tasks === 0) return states;
    for (const index of await this.#store.unreported(id, 0, tasks)) states[index] = STATE.pending;
    return states;
  }
}

/** The facts view's states with each error's own kind (error or dead) set, as one view. */
function combined(version: string, facts: FactsView, errors: ErrorsView): TaskView {
  const states = facts.states.slice();
  const { marks } = errors;
  for (let at = 0; at < marks.length; at += 2) {
    const index = marks[at] as number;
    if (index < states.length) states[index] = marks[at + 1] as number;
  }
  const { version: _facts, states: _states, ...fromFacts } = facts;
  const { version: _errors, marks: _marks, ...fromErrors } = errors;
  return { ...fromFacts, ...fromErrors, version, states, stateRuns: stateRuns(states) };
}
