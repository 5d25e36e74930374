/** A request's id: a positive integer, unique within one store. */
export type RequestId = number;

/** What a map asks the store to keep: the function, its namespace, one argument tuple per task. */
export interface NewRequest {
  /** The function to run, as opaque bytes (Sheepdog stores its Python source and name here). */
  func: Uint8Array;
  /** The namespace, as opaque bytes (a pickle). */
  ns: Uint8Array;
  /** One pickled argument tuple per task, in order; task `i` runs with `args[i]`. */
  args: Iterable<Uint8Array>;
  /** JSON-serialisable facts about the request that the store keeps beside it. @default {} */
  meta?: RequestMeta;
  /**
   * Told the new request's id and token as soon as the store has fixed them, before it stores
   * the arguments, so that the caller can get a job ready meanwhile (core queues it, and its
   * server holds the workers' calls until `createRequest` resolves). No reader sees the request
   * before `createRequest` resolves, nor ever if it rejects. Optional for a store: one that
   * never calls it is correct, and its callers wait for `createRequest`.
   */
  onCreating?: (created: CreatedRequest) => void;
}

/** Free-form facts about a request (the job ids it was submitted as, the host, ...). */
export type RequestMeta = Record<string, unknown>;

/** What `createRequest` hands back. */
export interface CreatedRequest {
  id: RequestId;
  /**
   * The request's secret, for workers to prove they belong to it. Shown once: the store
   * keeps only its hash (see {@link hashToken}), so keep it in memory, never in logs.
   */
  token: string;
}

/** A request as the store holds it. */
export interface RequestInfo {
  id: RequestId;
  func: Uint8Array;
  ns: Uint8Array;
  /** How many tasks (argument tuples) it has. */
  tasks: number;
  /** SHA-256 of the token, for constant-time comparison. */
  tokenHash: Uint8Array;
  /** When it was created, in milliseconds since the epoch. */
  createdAt: number;
  meta: RequestMeta;
}

/** How far a request has come. `results + errors <= tasks`, always. */
export interface RequestCounts {
  tasks: number;
  results: number;
  errors: number;
}

/** One line of `listRequests`. */
export interface RequestSummary extends RequestCounts {
  id: RequestId;
  createdAt: number;
  meta: RequestMeta;
}

/** One task of `getResults`: its arguments and its result, `null` while it has none. */
export interface TaskResult {
  index: number;
  args: Uint8Array;
  result: Uint8Array | null;
}

/** One failed task of `getErrors`: its arguments and the error text (a Python traceback). */
export interface TaskError {
  index: number;
  args: Uint8Array;
  error: string;
  /**
   * `true` when the error is provisional (see {@link PutErrorOptions.provisional}): inferred
   * from the scheduler, not reported by the task, so a real report may still replace it.
   * Absent for an error the task reported.
   */
  provisional?: true;
}

/**
 * What a worker tells about one call beside its report: when it ran and where, how much memory
 * it took, and what it printed. Every field is optional (a report of an older worker, or one
 * recovered from a job's output, has none). Check a value with {@link taskFactsProblem}.
 */
export interface TaskFacts {
  /** When the call began, in milliseconds since the Unix epoch by the node's clock (finite, >= 0). */
  startedAt?: number;
  /** When the call ended, as `startedAt`. */
  endedAt?: number;
  /** The node's host name (1 to {@link MAX_HOST_LENGTH} characters, no control character). */
  host?: string;
  /** The peak resident memory of the worker process by the end of the call, in bytes (a safe integer >= 0). */
  peakMemoryBytes?: number;
  /** Which run of the task this was: 1 for the first, 2 for its first retry, ... (a safe integer >= 1). */
  attempt?: number;
  /**
   * The tail of what the call printed (stdout and stderr, interleaved), at most
   * {@link MAX_LOG_BYTES} UTF-8 bytes on the wire; a log whose beginning was cut starts with
   * {@link logCutMark}. Stores keep it as they get it.
   */
  log?: string;
}

/** A character a host name never has (U+0000 to U+001F, U+007F to U+009F). */
const CONTROL_CHARACTER = /\p{Cc}/u;

/** The longest {@link TaskFacts.host}, in characters. */
export const MAX_HOST_LENGTH = 255;

/**
 * The largest {@link TaskFacts.log} a report carries, in UTF-8 bytes, its cut mark included:
 * a worker keeps the tail of the output, and the server cuts a longer log to its tail (see
 * `tailOfLog`).
 */
export const MAX_LOG_BYTES = 64 * 1024;

/**
 * The first line of a log whose beginning was cut: `[sheepdog: 1234 bytes cut]` and a line feed,
 * where 1234 is how many UTF-8 bytes of output came before the tail that was kept.
 */
export function logCutMark(cutBytes: number): string {
  return `[sheepdog: ${cutBytes} bytes cut]\n`;
}

const isStamp = (value: unknown) =>
  typeof value === "number" && Number.isFinite(value) && value >= 0;
const isCount = (value: unknown, least: number) =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= least;

/**
 * What is wrong with `facts` as {@link TaskFacts} (a sentence), or `undefined` when nothing is:
 * an object whose fields, those present, have their types and bounds (the log's length is not
 * checked here). Other fields are ignored.
 */
export function taskFactsProblem(facts: unknown): string | undefined {
  if (typeof facts !== "object" || facts === null || Array.isArray(facts)) {
    return "A report's facts must be an object.";
  }
  const { startedAt, endedAt, host, peakMemoryBytes, attempt, log } = facts as TaskFacts;
  if (startedAt !== undefined && !isStamp(startedAt)) {
    return "startedAt must be milliseconds since the epoch (a finite number >= 0).";
  }
  if (endedAt !== undefined && !isStamp(endedAt)) {
    return "endedAt must be milliseconds since the epoch (a finite number >= 0).";
  }
  if (
    host !== undefined &&
    (typeof host !== "string" ||
      host.length < 1 ||
      host.length > MAX_HOST_LENGTH ||
      CONTROL_CHARACTER.test(host))
  ) {
    return `host must be a string of 1 to ${MAX_HOST_LENGTH} characters, none of them a control character.`;
  }
  if (peakMemoryBytes !== undefined && !isCount(peakMemoryBytes, 0)) {
    return "peakMemoryBytes must be a whole number of bytes (a safe integer >= 0).";
  }
  if (attempt !== undefined && !isCount(attempt, 1)) {
    return "attempt must be a whole number >= 1.";
  }
  if (log !== undefined && typeof log !== "string") return "log must be a string.";
  return undefined;
}

/**
 * One report in a {@link Store.putReports} batch: a result's pickle, or an error's text (with
 * `provisional`, an error inferred rather than reported: see {@link PutErrorOptions}), and what
 * the worker told about the call (`facts`), which is stored with the report and shares its fate:
 * the facts of a task are those of its stored report (a duplicate's are ignored; a real report
 * that replaces a provisional error brings its own, or none).
 */
export type StoreReport =
  | { index: number; kind: "result"; value: Uint8Array; facts?: TaskFacts }
  | { index: number; kind: "error"; value: string; provisional?: boolean; facts?: TaskFacts };

/**
 * What {@link Store.getTaskFacts} says of a task that has a report: the report's kind, and its
 * facts without the log (`hasLog` says whether there is one: read it with `getLogs`).
 */
export interface TaskFactsEntry extends Omit<TaskFacts, "log"> {
  kind: "result" | "error";
  /** `true` for a provisional error (see {@link PutErrorOptions.provisional}). */
  provisional?: true;
  hasLog: boolean;
}

/**
 * Told of the reports of request `id` that a write of this store object stored (see
 * {@link Store.watchReports}), in the order they were written.
 */
export type StoredReportsListener = (id: RequestId, reports: readonly StoreReport[]) => void;

/** One task's log, from {@link Store.getLogs}. */
export interface TaskLog {
  index: number;
  log: string;
}

/** Options of {@link Store.putError}. */
export interface PutErrorOptions {
  /**
   * The error is the caller's inference, not the task's report: the scheduler says the task
   * ended, and no report came (a task killed, or a worker that could not reach the server and
   * left its results in its output). A provisional error counts as an error (in `counts`, in
   * `getErrors`, and as a report for `unreported`), but a real report of the task that comes
   * later (a result or an error, live from the worker or recovered from its output) MUST replace
   * it and be stored as if it were the first. A provisional error never replaces any report,
   * provisional or not.
   * @default false
   */
  provisional?: boolean;
}

/**
 * Keeps requests, their arguments, and the results and errors that workers report.
 * Values are opaque bytes: a store never unpickles, and it MUST keep them as they were when
 * the call was made (a caller may reuse its buffers afterwards).
 *
 * Task indices are 0-based: task `i` of a request is its `i`-th argument tuple.
 *
 * Every method MUST reject with a `SheepdogError` — `REQUEST_NOT_FOUND` for an unknown
 * request id, `TASK_NOT_FOUND` for an index outside `0 .. tasks - 1`, `INVALID_INPUT` for a
 * value of the wrong type, `CLOSED` after `close()` — and MUST NOT throw synchronously.
 * `describeStoreContract` from `@sheepdog/contracts/testing` checks all of this.
 *
 * Several stores MAY be open on the same data at once (several processes sharing one
 * SQLite file); each method MUST then behave as if it ran alone.
 */
export interface Store {
  /**
   * Stores a new request and returns its id and token. Ids MUST increase.
   * The arguments MUST be kept in order; a request MAY have zero tasks.
   */
  createRequest(request: NewRequest): Promise<CreatedRequest>;

  /** The request with that id. */
  getRequest(id: RequestId): Promise<RequestInfo>;

  /**
   * The arguments of tasks `start .. start + count - 1`, in order.
   * The whole range MUST lie inside the request, else `TASK_NOT_FOUND`.
   * @default count 1
   */
  getArgs(id: RequestId, start: number, count?: number): Promise<Uint8Array[]>;

  /**
   * Records a task's result. MUST be idempotent: the first report for a task wins (a result
   * or an error), later ones are ignored, and counts never pass the number of tasks. The one
   * exception: a provisional error (see {@link PutErrorOptions.provisional}) MUST give way to a
   * real report, which then counts in its place (a result: one error fewer, one result more).
   * Resolves `true` when this report was stored, `false` when the task already had one.
   */
  putResult(id: RequestId, index: number, result: Uint8Array): Promise<boolean>;

  /**
   * Records a task's error (a traceback). The same first-report-wins rule as `putResult`. With
   * `{ provisional: true }`, records an error that the caller inferred (the scheduler says the
   * task ended without reporting): it is stored only if the task has no report, and a real
   * report replaces it later.
   */
  putError(
    id: RequestId,
    index: number,
    error: string,
    options?: PutErrorOptions,
  ): Promise<boolean>;

  /**
   * Records several reports of one request at once (a worker's report post), with the same
   * first-report-wins rule, within the batch too: of two reports for one task, the earlier
   * wins (unless it is a provisional error and the later a real report, which replaces it).
   * Resolves one boolean per report, `true` where that report was stored. If any index is
   * outside the request it MUST reject with `TASK_NOT_FOUND`, and if a report's `facts` are not
   * {@link TaskFacts} with `INVALID_INPUT`, storing none of them. A store with `getTaskFacts`
   * stores each stored report's facts with it; others ignore them.
   * Optional: a store that can write many reports in one transaction offers it, and callers
   * prefer it to many `putResult` calls (and need it to store facts).
   */
  putReports?(id: RequestId, reports: readonly StoreReport[]): Promise<boolean[]>;

  /**
   * Forgets the reports of these tasks so that they can run again (a retry). Tasks with
   * no report are left as they are.
   */
  resetTasks?(id: RequestId, indices: readonly number[]): Promise<void>;

  /** Merges `patch` into the request's meta (shallow, last write wins). */
  updateMeta(id: RequestId, patch: RequestMeta): Promise<void>;

  /**
   * The tasks of `start .. start + count - 1` that have no report yet, in order: what a
   * caller checks when the scheduler says a task ended. The range MUST lie inside the
   * request, else `TASK_NOT_FOUND`.
   */
  unreported(id: RequestId, start: number, count: number): Promise<number[]>;

  /** How many tasks, results and errors. */
  counts(id: RequestId): Promise<RequestCounts>;

  /** Every task in order, with its result or `null`. */
  getResults(id: RequestId): Promise<TaskResult[]>;

  /**
   * The results of tasks `start .. start + count - 1`, in order, `null` where a task has no
   * result (no report yet, or an error): what `getResults` says of them, without their
   * arguments. The range MUST lie inside the request, else `TASK_NOT_FOUND`. Optional: a caller
   * that needs results only (`map`) reads a large request in slices with it, never holding
   * every task's arguments and result at once.
   */
  getResultRange?(id: RequestId, start: number, count: number): Promise<(Uint8Array | null)[]>;

  /** The failed tasks, in order; a provisional error is marked `provisional: true`. */
  getErrors(id: RequestId): Promise<TaskError[]>;

  /**
   * What the reports of tasks `start .. start + count - 1` say, in order: for each task its
   * report's kind and facts (see {@link TaskFactsEntry}), or `null` while it has no report. The
   * range MUST lie inside the request, else `TASK_NOT_FOUND`. Optional: a store that keeps the
   * facts of {@link StoreReport} offers it (with `putReports` and `getLogs`); it MUST be cheap
   * enough to read 100,000 tasks at once (no logs, no values are read).
   * @default start 0, count the rest of the request
   */
  getTaskFacts?(id: RequestId, start?: number, count?: number): Promise<(TaskFactsEntry | null)[]>;

  /**
   * The logs of tasks `start .. start + count - 1` that have one, in task order. The range MUST
   * lie inside the request, else `TASK_NOT_FOUND`. Optional, with `getTaskFacts`.
   * @default start 0, count the rest of the request
   */
  getLogs?(id: RequestId, start?: number, count?: number): Promise<TaskLog[]>;

  /**
   * Calls `listener` with the reports each write of this store object stored (`putResult`,
   * `putError`, `putReports`: only those stored, each once, once its write is durable), and
   * returns a function that stops it. Reports that other processes or other store objects
   * write are not told. A listener must be quick and must not throw (what it throws is
   * ignored), nor keep the reports' values.
   * Optional: a reader in the same process (the dashboard) takes new reports from it instead
   * of reading them back.
   */
  watchReports?(listener: StoredReportsListener): () => void;

  /** Every request, oldest first, with its counts. */
  listRequests(): Promise<RequestSummary[]>;

  /** Releases the store. Later calls reject with `CLOSED`; a second close is harmless. */
  close(): Promise<void>;
}
