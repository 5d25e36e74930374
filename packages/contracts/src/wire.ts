/**
 * The protocol between the server and the Python workers, version 1.
 *
 * Every worker route is under `/v1/requests/:request/tasks/:task`, where `task` is the array
 * task number (1-based). A task covers the arguments `first .. first + count - 1` (0-based
 * store indices); with a chunk size of `c`, task `t` covers `(t - 1) * c` onward.
 *
 * Workers authenticate with `Authorization: Bearer <token>`, the token of that request. The
 * server compares it in constant time against the stored hash.
 *
 * Bodies that carry pickles are *frames*: a sequence of sections, each a 4-byte big-endian
 * unsigned length followed by that many bytes. The first section is a UTF-8 JSON header.
 *
 * - `GET  /v1/requests/:request/tasks/:task` -> frames
 *   `[TaskHeader, func, ns, args(first), ..., args(first + count - 1)]`,
 *   content type {@link TASK_CONTENT_TYPE}.
 * - `POST /v1/requests/:request/tasks/:task/reports`, frames
 *   `[ReportHeader, payload(report 0), payload(report 1), ...]`, where a result's payload is
 *   its pickle and an error's is the UTF-8 traceback, content type
 *   {@link REPORTS_CONTENT_TYPE} -> JSON {@link ReportsReply}.
 * - `GET  /health` -> JSON {@link HealthReply}.
 *
 * Anything malformed is answered 4xx with JSON {@link WireErrorBody}; never a crash, never a
 * stack trace or echoed input.
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
 * Each report is also printed on the worker's stdout as one line, so that results survive a
 * server that never comes back (`sheepdog recover`):
 * `SHEEPDOG-REPORT v1 <request> <index> <result|error> <base64 payload>`.
 */
export const STDOUT_REPORT_PREFIX = "SHEEPDOG-REPORT v1 ";

/** The settings a worker is launched with, embedded in its job program as JSON. */
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
}
