import type {
  RequestId,
  RequestSummary,
  Store,
  TaskError,
  TaskFactsEntry,
} from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type {
  DeadGroup,
  ErrorGroup,
  RateSeries,
  RequestDetail,
  RequestRow,
  TaskDetail,
  TimingView,
} from "./api-types.js";
import { errorCause, groupErrors } from "./error-groups.js";
import type { ReportTimes } from "./report-times.js";
import { pickleRepr } from "./repr.js";
import { attemptsOf, factsOf } from "./request-meta.js";
import type { RequestRows } from "./request-rows.js";
import type { RequestWatch } from "./request-watch.js";
import { source } from "./source.js";
import type { AttemptTally } from "./task-facts.js";
import { readFacts, readLog, readRun, summariseFacts, withReportsByAttempt } from "./task-facts.js";
import { ViewCache } from "./view-cache.js";

/**
 * What a request's page needs that costs a read of every task (one read of each kind, whatever
 * the task count): read once at a time, and reused while it is young (see {@link ViewCache});
 * the page's headline counts come from each read's fresh counts, not from it.
 */
interface TaskView {
  states: string;
  errorsByIndex: Map<number, TaskError>;
  errors: ErrorGroup[];
  moreErrorGroups: number;
  dead: DeadGroup[];
  /** Whether the store records facts. */
  factsRecorded: boolean;
  /** How many reports came from each attempt, `null` when the store records no facts. */
  attempts: AttemptTally | null;
  timing: TimingView | null;
  /** When the reports came, `null` where the store records no report's end. */
  times: ReportTimes | null;
}

/** How many requests' task views are kept. */
const KEPT_VIEWS = 8;

const STATE = { pending: 46, done: 100, error: 101, dead: 120 } as const; // . d e x
const STATE_NAMES: Record<string, TaskDetail["state"]> = {
  ".": "pending",
  d: "done",
  e: "error",
  x: "dead",
};

/** Builds a request's page (`/api/requests/:id`) and a task's (`.../tasks/:index`). */
export class RequestDetails {
  readonly #store: Store;
  readonly #watch: RequestWatch;
  readonly #rows: RequestRows;
  readonly #views: ViewCache<TaskView>;

  /** `clock` (ms, `performance.now` by default) times the reuse of task views. */
  constructor(store: Store, watch: RequestWatch, rows: RequestRows, clock?: () => number) {
    this.#store = store;
    this.#watch = watch;
    this.#rows = rows;
    this.#views = new ViewCache<TaskView>({ kept: KEPT_VIEWS, ...(clock ? { clock } : {}) });
  }

  /** Request `id`'s page; rejects with `REQUEST_NOT_FOUND` for an unknown id. */
  async detail(id: RequestId, now: number): Promise<RequestDetail> {
    const summary = await this.#summaryOf(id);
    const [fn, view] = await Promise.all([this.#rows.functionOf(id), this.#taskView(summary)]);
    const row = await this.#rows.rowOf(summary, now, view.times);
    return {
      request: row,
      source: fn.source,
      states: view.states,
      errors: view.errors,
      moreErrorGroups: view.moreErrorGroups,
      dead: view.dead,
      attempts: withReportsByAttempt(attemptsOf(summary.meta, summary.tasks), view.attempts),
      rate: this.#rateOf(row, view.times, now),
      timing: view.timing,
      factsRecorded: view.factsRecorded,
      facts: factsOf(summary.meta),
      now,
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
    const state = STATE_NAMES[view.states[index] ?? "."] ?? "pending";
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

  #taskView(summary: RequestSummary): Promise<TaskView> {
    const stamp = {
      key: `${summary.results}/${summary.errors}`,
      // A new error is read at once (the page shows errors within a second); new results wait.
      meta: `${summary.errors}/${JSON.stringify(summary.meta)}`,
      complete: summary.results + summary.errors >= summary.tasks,
    };
    return this.#views.get(String(summary.id), stamp, () => this.#readTaskView(summary));
  }

  async #readTaskView(summary: RequestSummary): Promise<TaskView> {
    const { id, tasks } = summary;
    const [facts, errors] = await Promise.all([
      readFacts(this.#store, id, tasks),
      summary.errors > 0 ? this.#store.getErrors(id) : Promise.resolve([]),
    ]);
    const states = facts ? statesOfFacts(facts) : await this.#statesOfUnreported(id, tasks);
    const errorsByIndex = new Map<number, TaskError>();
    for (const error of errors) {
      errorsByIndex.set(error.index, error);
      states[error.index] = errorCause(error).dead ? STATE.dead : STATE.error;
    }
    const summarised = facts ? summariseFacts(facts, summary.createdAt) : null;
    return {
      states: new TextDecoder().decode(states),
      errorsByIndex,
      ...groupErrors(errors),
      factsRecorded: facts !== null,
      attempts: summarised?.attempts ?? null,
      timing: summarised?.timing ?? null,
      times: summarised?.times ?? null,
    };
  }

  /** The states of a store without facts: done but where `unreported` says pending. */
  async #statesOfUnreported(id: RequestId, tasks: number): Promise<Uint8Array> {
    const states = new Uint8Array(tasks).fill(STATE.done);
    if (tasks === 0) return states;
    for (const index of await this.#store.unreported(id, 0, tasks)) states[index] = STATE.pending;
    return states;
  }
}

/** Each task's state by its report's kind (the errors' own kinds are set from `getErrors`). */
function statesOfFacts(facts: readonly (TaskFactsEntry | null)[]): Uint8Array {
  const states = new Uint8Array(facts.length);
  for (let index = 0; index < facts.length; index++) {
    const entry = facts[index];
    states[index] = !entry ? STATE.pending : entry.kind === "result" ? STATE.done : STATE.error;
  }
  return states;
}
