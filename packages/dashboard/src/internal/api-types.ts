/*
 * The JSON the dashboard's routes answer with: the one description of it, which the server
 * builds and the page (page/*.js, through JSDoc imports) reads.
 */

/** Where a request is in its life. */
export type RequestState = "running" | "complete" | "cancelled" | "interrupted" | "failed";

/** One request, as the list of requests and the top of its own page show it. */
export interface RequestRow {
  id: number;
  /** The Python function's name, or `"?"` when its bytes are not Sheepdog's `{ name, source }`. */
  name: string;
  /** When it was created, in milliseconds since the epoch. */
  createdAt: number;
  /** The head node (`connection.host` of its meta), `null` when it records none. */
  host: string | null;
  /** The scheduler of its latest job ("gridengine", "slurm", "local", ...), `null` before one. */
  scheduler: string | null;
  /** Its latest job's id as the scheduler shows it, `null` before one. */
  jobId: string | null;
  tasks: number;
  /** Tasks with a result. */
  done: number;
  /** Tasks with an error (dead ones included). */
  failed: number;
  /** Tasks with no report yet (queued or running: the store cannot tell which). */
  pending: number;
  /**
   * Reports per second: while the request runs, over the last half minute the dashboard
   * watched; on a finished request's own page, from its first task's start to its last end
   * where the store records the times (the list of requests reads no task's times). `null`
   * when unknown.
   */
  throughput: number | null;
  /** Seconds until every task has reported at `throughput`, `null` when unknown or not running. */
  etaSeconds: number | null;
  state: RequestState;
}

/** `GET /api/requests`. */
export interface RequestList {
  requests: RequestRow[];
  /** The server's clock, in milliseconds since the epoch. */
  now: number;
}

/** `GET /api/session`: what the page may do. */
export interface Session {
  /** Sent as the `x-sheepdog-action-key` header of every action (POST). */
  actionKey: string;
  /** Which actions the dashboard offers (the buttons are hidden otherwise). */
  actions: { cancel: boolean; retryFailed: boolean };
  /** A title for the page (the store's file, say), or `null`. */
  title: string | null;
}

/**
 * The state of each task in index order, as runs: a state's character, then how many tasks in a
 * row have it when more than one (`d1000.24e`: 1,000 done, 24 without a report, then one
 * error). The characters: `.` no report yet, `d` done (a result), `e` an error it reported, `x`
 * dead (it ended without reporting: the scheduler's cause is its error).
 */
export type TaskStateRuns = string;

/** A failed task shown as an example of its group. */
export interface FailedTask {
  index: number;
  /** Its arguments, as a short Python-like repr. */
  args: string;
  /** The error's whole text (a Python traceback, or the scheduler's cause for a dead task). */
  error: string;
}

/** Errors of one exception type and message. */
export interface ErrorGroup {
  /** The exception's type, e.g. `ValueError` (`"Error"` when the text names none). */
  type: string;
  /** The exception's message (the last line of the traceback after the type). */
  message: string;
  count: number;
  /** The first task indices of the group (at most {@link MAX_GROUP_INDICES}). */
  indices: number[];
  /** The first tasks of the group, with their arguments and tracebacks. */
  examples: FailedTask[];
}

/** Tasks that ended without reporting, of one kind (the scheduler's words) and cause. */
export interface DeadGroup {
  /** One of the contracts' `deathKinds` ("out-of-memory", "time-limit", "signal", ...). */
  kind: string;
  /** The scheduler's cause, e.g. `killed by signal 9 (exit status 137)`. */
  cause: string;
  count: number;
  indices: number[];
  examples: FailedTask[];
}

/** One attempt of a request: its first run, then each retry of failed tasks. */
export interface Attempt {
  /** 0 for the first run, 1 for the first retry, ... */
  attempt: number;
  jobId: string | null;
  scheduler: string | null;
  /** How many of the request's tasks it ran. */
  tasks: number;
  /** Results that came from this attempt, `null` where the store records no facts. */
  results: number | null;
  /** Errors that came from this attempt, `null` where the store records no facts. */
  errors: number | null;
}

/**
 * Results and errors per second over time: by when each task ended, where the store records it,
 * else as the dashboard saw the counts change while it watched. At most 600 points.
 */
export interface RateSeries {
  /** The start of each point's bin, in seconds since the epoch. */
  t: number[];
  /** Results per second, averaged over the point's bin. */
  results: number[];
  /** Errors per second, averaged over the point's bin. */
  errors: number[];
  /** The seconds each point covers: 1, or more for a long request (the last may cover fewer). */
  binSeconds: number;
  /**
   * `"reports"`: from the end times the store records of the reports (the whole request);
   * `"watched"`: counted while the dashboard watched (the store records no times, or no report
   * of the request tells when its task ended).
   */
  from: "reports" | "watched";
}

/** What the store records of task runs (see `task-facts.ts`). */
export interface TimingView {
  /** Run times in seconds, as a histogram: bucket lower edges and counts. */
  histogram: { edges: number[]; counts: number[] } | null;
  /** The longest runs, longest first. */
  slowest: TaskRunView[];
  /**
   * Queue wait (seconds from the request's creation to the start) and run time, per task (at
   * most 5,000 tasks, evenly picked).
   */
  waitVsRun: { wait: number[]; run: number[] } | null;
}

/** One task's run, as far as the store records it. */
export interface TaskRunView {
  index: number;
  /** Seconds, `null` when not recorded. */
  runSeconds: number | null;
  host: string | null;
  peakMemoryBytes: number | null;
  /** Which run of the task reported: 1 the first, 2 its first retry, ... */
  attempt: number | null;
}

/** What a task printed (stdout and stderr interleaved), its tail when it was long. */
export interface TaskLogView {
  text: string;
  /** How many bytes of its beginning were cut (0 when none). */
  cutBytes: number;
}

/**
 * What a request's page shows that stays fresh on every read of `GET /api/requests/:id`: its
 * counts, throughput and ETA, attempts, reports per second.
 */
export interface RequestHeadline {
  request: RequestRow;
  attempts: Attempt[];
  rate: RateSeries;
  /** Whether the store records what tasks tell of their runs (times, host, memory, log). */
  factsRecorded: boolean;
  /** The request's meta facts worth showing (chunk size, pickle protocol, cancellation, ...). */
  facts: Record<string, string>;
  /**
   * The version of the task view below (state runs, errors, dead tasks, timing): ask again with
   * `?since=<viewVersion>` and, while it has not changed, the answer leaves it out.
   */
  viewVersion: string;
  now: number;
}

/** What a request's page shows that costs a read of every task: sent only when it changed. */
export interface RequestTaskView {
  /** The function's Python source, `null` when the bytes are not Sheepdog's. */
  source: string | null;
  stateRuns: TaskStateRuns;
  errors: ErrorGroup[];
  /** Groups left out of `errors` (only the largest are listed). */
  moreErrorGroups: number;
  dead: DeadGroup[];
  /** `null` while the store records no task runs (or none has a time yet). */
  timing: TimingView | null;
}

/** `GET /api/requests/:id`: the headline and the task view. */
export interface RequestDetail extends RequestHeadline, RequestTaskView {
  unchanged: false;
}

/** `GET /api/requests/:id?since=<viewVersion>` while the task view is still that version. */
export interface RequestDetailUnchanged extends RequestHeadline {
  unchanged: true;
}

/** `GET /api/requests/:id/tasks/:index`. */
export interface TaskDetail {
  index: number;
  state: "pending" | "done" | "error" | "dead";
  args: string;
  /** The result as a short repr, `null` when there is none (or it cannot be read here). */
  result: string | null;
  error: string | null;
  /** What its report says of its run, `null` where the store records none (or no report yet). */
  run: TaskRunView | null;
  /** What it printed; `null` when it has no log, `"not recorded"` where the store keeps none. */
  log: TaskLogView | null | "not recorded";
}

/** A server-sent event `requests`: the rows that changed since the last one. */
export interface RequestsEvent {
  changed: RequestRow[];
  now: number;
}

/** The most task indices listed per group. */
export const MAX_GROUP_INDICES = 200;
/** The most example tasks per group. */
export const MAX_GROUP_EXAMPLES = 5;
/** The most groups of errors listed. */
export const MAX_ERROR_GROUPS = 50;
