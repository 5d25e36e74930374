/**
 * The protocol between the server and the Python workers, version 1.
 *
 * Every worker route is under `/v1/requests/:request/tasks/:task`, where `task` is the array
 * task number (1-based). A task covers the arguments `first .. first + count - 1` (0-based
 * store indices); with a chunk size of `c` (the request meta's `chunkSize`, a positive integer,
 * default 1), task `t` covers `(t - 1) * c` onward, `min(c, tasks - first)` of them. There are
 * `ceil(tasks / c)` array tasks.
 *
 * Retries add array tasks after those (a retry job runs only the arguments that failed): with
 * `A = ceil(tasks / c)` and the request meta's `retryTasks` a list of lists of store indices,
 * task `A + 1 + j` covers exactly the arguments `retryTasks[j]` (ascending, distinct, each in
 * `0 .. tasks - 1`), and its {@link TaskHeader} lists them in `indices`. A retry job's array
 * tasks are numbered from 1 by its scheduler like any other; its workers add their launch's
 * {@link WorkerLaunch.taskOffset} to reach the request's task number. The list only grows, so
 * a server reads the meta again when asked for a task past the end it knows. This layout is
 * code in `wire/task-layout.ts` (`layoutOf`, `taskCount`, `taskRange`, `taskIndices`,
 * `retryChunks`), which the server and core use and the Python worker is tested against.
 *
 * Workers authenticate with `Authorization: Bearer <token>`, the token of that request. The
 * server compares it in constant time against the stored hash.
 *
 * Bodies that carry pickles are *frames*: a sequence of sections, each a 4-byte big-endian
 * unsigned length followed by that many bytes. The first section is a UTF-8 JSON header.
 * `wire/frames.ts` encodes and decodes them (`encodeTaskFrames`, `decodeReports`, ...).
 *
 * - `GET  /v1/requests/:request/tasks/:task` -> frames
 *   `[TaskHeader, func, ns, args(first), ..., args(first + count - 1)]`,
 *   content type {@link TASK_CONTENT_TYPE}.
 * - `POST /v1/requests/:request/tasks/:task/reports`, frames
 *   `[ReportHeader, payload(report 0), payload(report 1), ...]`, where a result's payload is
 *   its pickle (protocol 2 to 5: it starts with PROTO and ends with STOP) and an error's is the
 *   UTF-8 traceback, content type {@link REPORTS_CONTENT_TYPE} -> JSON {@link ReportsReply}.
 *   Every index MUST lie in this task's range, once per post; if any report is bad the whole
 *   post is refused (400) and none of it is stored. A server MAY check that a result decodes
 *   (Sheepdog's does): one that does not is stored as an error for its task, with the reason,
 *   and the rest of the post is stored as usual.
 * - `GET  /health` -> JSON {@link HealthReply}.
 *
 * Anything malformed is answered 4xx with JSON {@link WireErrorBody}; never a crash, never a
 * stack trace or echoed input. 400 bad ids or frames, 401 a missing or wrong token, 404 an
 * unknown request or task, 405 a wrong method, 413 a body over the limit, 415 a wrong content
 * type; 503 when the server's store fails (retry). Workers retry connection failures, 5xx, 408
 * and 429, and never other 4xx.
 */
export const WIRE_VERSION = 1;

export const TASK_CONTENT_TYPE = "application/vnd.sheepdog.task+frames";
export const REPORTS_CONTENT_TYPE = "application/vnd.sheepdog.reports+frames";

/** The JSON header of a task fetch. */
export interface TaskHeader {
  version: typeof WIRE_VERSION;
  request: number;
  task: number;
  /** The store index of the first argument tuple in this task. */
  first: number;
  /** How many argument tuples follow the func and ns sections. */
  count: number;
  /**
   * The store indices of the argument tuples, in section order, for a retry task (whose
   * arguments need not be consecutive); absent for a task of `first .. first + count - 1`.
   * When present, `first` is `indices[0]` and `count` is `indices.length`.
   */
  indices?: number[];
}

/** One report in a report post; its payload is the section at the same position. */
export interface ReportEntry {
  /** The store index (0-based) of the argument tuple this reports on. */
  index: number;
  kind: "result" | "error";
}

/** The JSON header of a report post. */
export interface ReportHeader {
  version: typeof WIRE_VERSION;
  reports: ReportEntry[];
}

/** The answer to a report post. */
export interface ReportsReply {
  /** Reports stored now. */
  stored: number;
  /** Reports for tasks that already had one (the first report wins). */
  duplicates: number;
}

export interface HealthReply {
  ok: true;
  version: typeof WIRE_VERSION;
}

export interface WireErrorBody {
  status: number;
  message: string;
}

/**
 * The function as stored in a request's `func` bytes: UTF-8 JSON of this shape. The worker
 * executes `source` in a fresh module namespace (after the ns) and calls `name`.
 */
export interface FunctionSource {
  name: string;
  source: string;
}

/**
 * The key that marks a `py` function inside the namespace. The `ns` bytes are a pickle of a
 * dict from names to values (empty bytes for no namespace); a value that is a dict with this
 * single key, holding a {@link FunctionSource} (`{"name": ..., "source": ...}`), is a function.
 * The worker builds one module namespace: first every plain value, then each function's
 * `source` executed into it and bound under its ns key, then the main function's source; so
 * functions, constants and a `global` import are visible to each other.
 */
export const NS_FUNCTION_MARKER = "__sheepdog_function__";

/** How a `py` function is encoded as a value of the namespace dict (before pickling). */
export interface NamespaceFunction {
  [NS_FUNCTION_MARKER]: FunctionSource;
}

/**
 * The worker's exit status: `ok` when every report was delivered (even if the function
 * raised); `undelivered` when reports could not be delivered (they are still on stdout);
 * `usage` for bad launch settings or no task number in the environment; `refused` when the
 * server refused the worker (4xx) or answered with something unusable.
 */
export const WORKER_EXIT_CODES = { ok: 0, undelivered: 1, usage: 2, refused: 3 } as const;

/**
 * Each report is also printed on the worker's stdout as one line, before it is posted, so
 * that results survive a server that never comes back (`sheepdog recover`):
 * `SHEEPDOG-REPORT v1 <request> <index> <result|error> <base64 payload>`.
 */
export const STDOUT_REPORT_PREFIX = "SHEEPDOG-REPORT v1 ";

/**
 * The settings a worker is launched with, embedded in its job program as JSON. The task
 * number comes from the environment: the first set of `SHEEPDOG_TASK_ID`, `SGE_TASK_ID`,
 * `SLURM_ARRAY_TASK_ID`, `PBS_ARRAY_INDEX` (`SGE_TASK_ID=undefined` counts as unset).
 */
export interface WorkerLaunch {
  /** The server's base URL, without a trailing slash. */
  url: string;
  token: string;
  request: number;
  /** The pickle protocol for results. */
  pickleProtocol: number;
  /** How long to keep retrying an unreachable server, in seconds. @default 600 */
  retryWindowSeconds: number;
  /** `setrlimit(RLIMIT_AS)` to this many bytes (from `-l mem_grab=...`), when set. */
  memoryLimitBytes?: number;
  /**
   * Added to the task number from the environment to give the request's task number: a retry
   * job's task 1 is the request's task `taskOffset + 1` (see `retryTasks` above). @default 0
   */
  taskOffset?: number;
}
