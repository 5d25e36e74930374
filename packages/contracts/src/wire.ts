import type { TaskFacts } from "./store.js";

/**
 * The protocol between the server and the Python workers, version 2.
 *
 * Every worker route is under `/v2/requests/:request/tasks/:task`, where `task` is the array
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
 * ## Authentication, both ways
 *
 * The request's key `K` is the SHA-256 of its token (`hashToken`): what the store keeps, and
 * what the worker computes from the token it reads from its token file
 * ({@link WorkerLaunch.tokenFile}). The token itself never travels, and `K` is a secret as
 * the token is (whoever holds it can act as the request's worker or server). Code in
 * `wire/auth.ts`; the Python worker mirrors it and is tested against it.
 *
 * A worker signs every request (new nonce, new time on every attempt):
 * `Authorization: Sheepdog <nonce>.<time>.<mac>`, where `nonce` is 16 random bytes in base64url
 * (22 characters), `time` the worker's clock in milliseconds since the Unix epoch (decimal),
 * and `mac` the base64url HMAC-SHA256 under `K` of the UTF-8 text
 * `"sheepdog-worker-v2" LF method LF host LF path LF nonce LF time LF bodyHash`: `host` is the
 * `Host` header as sent (the authority of the worker's URL), `path` the request target as sent,
 * and `bodyHash` the base64url SHA-256 of the body, which a post also sends as
 * `Sheepdog-Content-SHA256` (empty for a GET). The server answers an unauthenticated request
 * (no or a malformed header, an unknown request, a wrong MAC, a nonce it has seen) with the
 * same 401 whether or not the request exists, before reading any body. It refuses (401) a MAC
 * whose host names another port than its own (or than a route it was told of, such as a
 * relay's `host:port`), so that a request captured by a program on another port (one that
 * squats the port of a server that is gone) is useless to it. A
 * signed request is used once: the server accepts `time` from 60 s behind its clock
 * (`REQUEST_TIME_BEHIND_MS`) to 10 s ahead (`REQUEST_TIME_AHEAD_MS`), never
 * before it started, and remembers the nonces of that window. A right MAC with a time outside
 * it is answered 401 with the server's clock in the body (`serverTime`, proven as below): the
 * worker corrects its clock by the difference and signs again.
 *
 * The server proves every answer to a request whose MAC was right (errors included):
 * `Sheepdog-Proof: <proof>`, the base64url HMAC-SHA256 under `K` of the UTF-8 text
 * `"sheepdog-server-v2" LF method LF path LF nonce LF status LF` followed by the answer's body
 * bytes. A worker checks it before it uses anything of the answer (before it unpickles or
 * executes what a task carries). An answer without a right proof is not from the request's
 * server: the worker retries it only when its status is one that a server gives before it
 * knows the worker (5xx, 408, 429), stops with `refused` on a 401, and stops with `impostor`
 * on anything else (a 200, a redirect, another 4xx). A worker follows no redirect, ignores
 * proxy settings, reads at most {@link WorkerLaunch.maxReplyBytes} of an answer, and gives an
 * attempt (connecting, sending, reading) 60 s plus 1 s per MiB sent or announced, and a
 * connection 10 s to open; a route that cannot be reached (or where something else answers)
 * makes it try the next of its routes ({@link WorkerLaunch.fallbackUrls}) at once.
 *
 * ## Routes
 *
 * Bodies that carry pickles are *frames*: a sequence of sections, each a 4-byte big-endian
 * unsigned length followed by that many bytes. The first section is a UTF-8 JSON header.
 * `wire/frames.ts` encodes and decodes them (`encodeTaskFrames`, `decodeReports`, ...).
 *
 * - `GET  /v2/requests/:request/tasks/:task` -> frames
 *   `[TaskHeader, func, ns, args(first), ..., args(first + count - 1)]`,
 *   content type {@link TASK_CONTENT_TYPE}; or 409 with JSON {@link TaskHeldBody} when
 *   another array task has claimed this one (below): the worker runs nothing of it.
 * - `POST /v2/requests/:request/tasks/:task/next`, empty body -> the frames of a task that
 *   array task `:task` now holds (its header's `task` names it), or an empty 200 when there is
 *   none. A worker whose launch has {@link WorkerLaunch.claimTasks} asks once its own task is
 *   done, and runs what it is given as it ran its own, until the answer is empty. The server
 *   gives only a chunk task (never a retry task) that no array task has fetched, of a request
 *   whose meta has `claims` (an object of claimed task -> the array task that holds it, which
 *   the server keeps up to date before it answers): so a job of more tasks than slots runs
 *   without the scheduler's pause between one wave of tasks and the next. A task whose own
 *   array task comes later is answered 409. `taskIndices` counts a claimed task's arguments as
 *   its holder's, for the client's account of tasks that end without reporting.
 * - `POST /v2/requests/:request/tasks/:task/reports`, frames
 *   `[ReportHeader, payload(report 0), payload(report 1), ...]`, where a result's payload is
 *   its pickle (protocol 2 to 5: it starts with PROTO and ends with STOP) and an error's is the
 *   UTF-8 traceback, content type {@link REPORTS_CONTENT_TYPE} -> JSON {@link ReportsReply}.
 *   Every index MUST lie in this task's range, once per post; if any report is bad the whole
 *   post is refused (400) and none of it is stored. A server MAY check that a result decodes
 *   (Sheepdog's does): one that does not is stored as an error for its task, with the reason,
 *   and the rest of the post is stored as usual.
 * - `GET  /health` -> JSON {@link HealthReply} (no authentication).
 * - Anything under `/v1/` -> 410 (a worker of wire protocol 1 stops with `refused`).
 *
 * Anything malformed is answered 4xx with JSON {@link WireErrorBody}; never a crash, never a
 * stack trace or echoed input. 400 bad ids, frames or body hash, 401 not authenticated, 404 an
 * unknown task (of a request the worker authenticated for), 405 a wrong method, 410 an old
 * protocol version, 413 a body over the limit, 415 a wrong content type; 503 when the server's
 * store fails or too many bodies are being read at once (retry). Workers retry connection
 * failures, 5xx, 408 and 429, and never other 4xx.
 */
export const WIRE_VERSION = 2;

export const TASK_CONTENT_TYPE = "application/vnd.sheepdog.task+frames";
export const REPORTS_CONTENT_TYPE = "application/vnd.sheepdog.reports+frames";

/** The body of a 409 to a task fetch: another array task holds this task (see the routes). */
export interface TaskHeldBody extends WireErrorBody {
  status: 409;
  /** The array task that claimed it. */
  heldBy: number;
}

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

/**
 * One report in a report post; its payload is the section at the same position. Beside its
 * index and kind it MAY carry what the worker saw of the call (the fields of {@link TaskFacts},
 * each optional, omitted rather than `null`): `startedAt` and `endedAt` (milliseconds since the
 * Unix epoch by the node's clock, finite numbers >= 0), `host` (1 to 255 characters, no control character),
 * `peakMemoryBytes` (an integer >= 0), `attempt` (an integer >= 1) and `log` (the tail of the
 * call's stdout and stderr, at most `MAX_LOG_BYTES` (64 KiB) of UTF-8, starting with the
 * line of `logCutMark` when its beginning was cut). A field of the wrong type or out of bounds
 * makes the post refused (400); a longer log is cut to its tail by the server; fields a server
 * does not know are ignored.
 */
export interface ReportEntry extends TaskFacts {
  /** The store index (0-based) of the argument tuple this reports on. */
  index: number;
  kind: "result" | "error";
}

/**
 * The JSON header of a report post, in one of two shapes: a list of entries, one per report
 * (`reports`), or the same entries as columns (`columns`, see {@link ReportColumns}). A server
 * of wire version 2 reads both; Sheepdog's workers send columns.
 */
export type ReportHeader = ReportRows | ReportColumnsHeader;

/** A report header that lists one {@link ReportEntry} per report. */
export interface ReportRows {
  version: typeof WIRE_VERSION;
  reports: ReportEntry[];
}

/** A report header whose entries are given as {@link ReportColumns}. */
export interface ReportColumnsHeader {
  version: typeof WIRE_VERSION;
  columns: ReportColumns;
}

/**
 * A column of a report header: one value per report, in payload order (`null` where a report
 * has none), or a single value that every report of the post has.
 */
export type ReportColumn<T> = T | (T | null)[];

/**
 * A post's {@link ReportEntry} fields as columns: `index` lists every report's index, in payload
 * order; every other field is a {@link ReportColumn} (`log` a list) or absent (no report has it). Each report's
 * fields are then checked as an entry's are. A thousand reports' facts are a few numbers each
 * instead of an object each: the header is about a third of the size, and a server reads it in
 * about a fifth of the time.
 */
export interface ReportColumns {
  index: number[];
  kind: ReportEntry["kind"] | ReportEntry["kind"][];
  startedAt?: ReportColumn<number>;
  endedAt?: ReportColumn<number>;
  host?: ReportColumn<string>;
  peakMemoryBytes?: ReportColumn<number>;
  attempt?: ReportColumn<number>;
  /** Always a list: a log is one call's. */
  log?: (string | null)[];
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
  /**
   * The server's clock (milliseconds since the Unix epoch) on a proven 401 that refuses a
   * request's time; the worker corrects its clock by it.
   */
  serverTime?: number;
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
 * `usage` for bad launch settings, an unreadable token file or no task number in the
 * environment; `refused` when the server refused the worker (4xx) or answered with something
 * unusable; `impostor` when something answered at the server's URL without proving that it
 * holds the request's key (nothing it sent was used; reports made so far are on stdout).
 */
export const WORKER_EXIT_CODES = {
  ok: 0,
  undelivered: 1,
  usage: 2,
  refused: 3,
  impostor: 4,
  unreachable: 5,
} as const;

/**
 * Each report is also printed on the worker's stdout as one line, before it is posted, so
 * that results survive a server that never comes back (`sheepdog recover`):
 * `SHEEPDOG-REPORT v1 <request> <index> <result|error> <base64 payload>`.
 */
export const STDOUT_REPORT_PREFIX = "SHEEPDOG-REPORT v1 ";

/**
 * The settings a worker is launched with, embedded in its job program as JSON. They hold no
 * secret: schedulers copy job programs where other users of a node can read them. The task
 * number comes from the environment: the first set of `SHEEPDOG_TASK_ID`, `SGE_TASK_ID`,
 * `SLURM_ARRAY_TASK_ID`, `PBS_ARRAY_INDEX` (`SGE_TASK_ID=undefined` counts as unset).
 */
export interface WorkerLaunch {
  /** The server's base URL, without a trailing slash: the first route a worker tries. */
  url: string;
  /**
   * Other routes to the same server (a relay on the head node, or the direct URL after a
   * relay), tried in order when the one in use cannot be reached. A worker keeps the route
   * that answered; the server accepts a request signed for any route it was told of.
   */
  fallbackUrls?: string[];
  /**
   * How long a worker that has never had an answer from the server (on any route) keeps
   * trying before it gives up with exit status 5, in seconds: a server that cannot be reached
   * at all is a wrong route, not a restart. Once it has had one answer, it retries for
   * `retryWindowSeconds`. @default 60
   */
  firstContactSeconds?: number;
  /**
   * The file that holds the request's token (its only content, surrounding white space
   * ignored): relative to the worker's home directory unless absolute. Core writes it, mode
   * 0600 in the job directory (which must be 0700), before it submits the job, and removes it
   * when `map` ends; after `mapAsync` it stays, since queued tasks need it however long they
   * wait (a later `sheepdog serve` serves them).
   */
  tokenFile: string;
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
  /**
   * Whether the worker, once its own task is done (or held by another), asks for tasks whose
   * array task has not started (`POST .../tasks/:task/next`, see the routes) and runs them.
   * One attempt per question, never a retry: a claim that fails ends the claiming, not the
   * task. Core sets it for a first attempt without a per-call time limit (a task that runs
   * more calls than its chunk could outlive the time it asked for). @default false
   */
  claimTasks?: boolean;
  /**
   * Which run of the request's tasks this job is: 1 for the first, 2 for the job that retries
   * some of them, and so on. The worker reports it with each call (`TaskFacts.attempt`).
   * @default 1
   */
  attempt?: number;
  /**
   * The largest answer the worker reads, in bytes: core sets it to what this request's
   * largest task can take (function, namespace, the largest chunk of arguments, the header).
   * A larger answer is refused unread. @default 1 GiB
   */
  maxReplyBytes?: number;
  /**
   * The largest post body the server accepts (its `maxBodyBytes`): a report too large for it
   * becomes its task's error at once, never sent. @default learnt from a 413
   */
  maxBodyBytes?: number;
  /**
   * A detached request's staged tasks: the pack of this job (see `wire/staging.ts`), relative
   * to the home directory unless absolute. The worker reads its task from it (checking its
   * MACs) instead of fetching it, so it runs whether or not the server is there; a pack it
   * cannot read or trust sends it to the server for its task.
   */
  stagedTasks?: string;
  /**
   * Where reports go that the server cannot take: a directory (the user's alone) in which the
   * worker writes each post it could not deliver as a spool file (`wire/staging.ts`), under a
   * temporary name first and then renamed, so a reader never sees part of one. A spooled report
   * counts as delivered. Once a task has spooled, its later posts are spooled at once.
   */
  spoolDir?: string;
  /**
   * With a `spoolDir`: how long a post keeps trying the server (every route) before it is
   * spooled, in seconds; this replaces `retryWindowSeconds` and `firstContactSeconds`.
   * @default 15
   */
  spoolAfterSeconds?: number;
}
