import type {
  DeathKind,
  JobRef,
  RequestCounts,
  RequestId,
  Resources,
  TaskState,
} from "@sheepdog/contracts";

/** How far a map has come. */
export interface MapProgress {
  request: RequestId;
  /** How many argument tuples in all. */
  tasks: number;
  results: number;
  errors: number;
  /** Array tasks the scheduler has not started yet, and those running (0 when unknown). */
  queued: number;
  running: number;
  elapsedMs: number;
  /** Which attempt is running: 1, then 2 for the first retry of failed arguments (`retries`). */
  attempt: number;
}

/** Options of `mapAsync`. */
export interface MapAsyncOptions {
  /**
   * Values and `py` functions the function can use by name: the original's namespace. Values
   * are pickled; functions are defined in the function's globals.
   */
  ns?: Record<string, unknown>;
  /** Aborting before the job is queued rejects with `ABORTED` and submits nothing. */
  signal?: AbortSignal;
  /**
   * Submit and walk away: the tasks (function, namespace and arguments, one pack per job) are
   * staged on the cluster under `sshDir`, readable by the user only, so they run whether or
   * not this process is there; a worker that cannot reach the server leaves its reports in a
   * spool beside them. `getResults(id, { block: true })`, `requestStatus` and
   * `sheepdog attach` bring the spooled reports home over SSH, from any process that has the
   * store. With `mapAsync`, nothing of the request then keeps this process or its server
   * alive; `map` waits as usual, and collects what was spooled while this machine was away.
   * @default false
   */
  detach?: boolean;
}

/** What an attempt of a map runs with; see {@link MapOptions.retryWith}. */
export interface AttemptOptions {
  /** GridEngine's options of the attempt (the configuration's `geOpts` at first). */
  geOpts: string[];
  /** Slurm's options of the attempt (the configuration's `slurmOpts` at first). */
  slurmOpts: string[];
  /** What each call needs (the configuration's `resources` at first). */
  resources: Resources;
}

/**
 * Why an argument failed, in the same words on every scheduler: how its task died
 * ({@link DeathKind}: `out-of-memory`, `time-limit`, `node-failure`, `cancelled`, `preempted`,
 * `signal`, `exit`, `never-started`), or `exception` when the function raised one (Python's
 * `MemoryError` counts as `out-of-memory`).
 */
export type FailureKind = DeathKind | "exception";

/** The arguments an attempt failed, as `retryWith` is told about them. */
export interface AttemptFailures {
  /** Each failed argument's index and why it failed. */
  failed: { index: number; kind: FailureKind }[];
  /** How many failed arguments of each kind. */
  kinds: Partial<Record<FailureKind, number>>;
}

/** Options of `map` and `mapSettled`. */
export interface MapOptions extends MapAsyncOptions {
  /** Progress on stderr, and a pointer to the errors at the end. @default false */
  verbose?: boolean;
  /**
   * Open the dashboard (see `dashboard()`) on the map's store while the map runs, and print its
   * address (with its token) on stderr. @default false
   */
  dashboard?: boolean | DashboardOptions;
  /** Called as results arrive (and at least every second); `progress.request` is the request id. */
  onProgress?: (progress: MapProgress) => void;
  /**
   * Aborting `signal` (or Ctrl-C / SIGTERM, where the instance handles signals) cancels the
   * array job, closes the server and the SSH connection, and rejects with `ABORTED`; with
   * `keepJob`, the job is left to run. @default false
   */
  keepJob?: boolean;
  /**
   * `map` only: reject with a {@link TasksFailedError} when any task failed, instead of
   * resolving with `null` in its place (which a function returning `None` also gives).
   * @default false
   */
  throwOnError?: boolean;
  /**
   * With `retries` (configuration): what each retry runs with. Called before attempt `attempt`
   * (2 for the first retry) with what the previous attempt ran with and why its arguments
   * failed (`failures.kinds`: `{ "out-of-memory": 3, "time-limit": 1 }`); returns what to
   * change, nothing to keep it, or `false` to stop retrying. What it returns is checked as
   * the configuration is.
   *
   * @example More memory after an out-of-memory death, more time after a timeout:
   * ```ts
   * await map(f, args, { host: "login", retries: 2, resources: { memory: "2G", time: "10:00" } }, {
   *   retryWith: (attempt, previous, { kinds }) => ({
   *     resources: {
   *       ...previous.resources,
   *       ...(kinds["out-of-memory"] && { memory: `${attempt * 2}G` }),
   *       ...(kinds["time-limit"] && { time: `${attempt * 10}:00` }),
   *     },
   *   }),
   * });
   * ```
   */
  retryWith?: (
    attempt: number,
    previous: AttemptOptions,
    failures: AttemptFailures,
  ) => RetryChange | Promise<RetryChange>;
}

/** What `retryWith` returns: what to change, nothing to keep it, or `false` to stop retrying. */
export type RetryChange = Partial<AttemptOptions> | undefined | false;

/** One task's outcome: its value, or the reason it failed (a traceback, or how it died). */
export type Settled<R> = { ok: true; value: R } | { ok: false; error: string };

/** What `mapSettled` resolves with. */
export interface MapSettled<R> {
  /** The request id, for `getResults`, `getErrors` and `sheepdog status`. */
  request: RequestId;
  /** Each task's outcome, in argument order. */
  results: Settled<R>[];
}

/** Options of `getResults`. */
export interface GetResultsOptions {
  /** Wait until every task has a result or an error. @default false */
  block?: boolean;
  /** With `block`, progress on stderr. @default false */
  verbose?: boolean;
  /** With `block`, aborting stops the wait (the job runs on) and rejects with `ABORTED`. */
  signal?: AbortSignal;
}

/** Where a request is: its counts, its job, and the scheduler's state of each array task. */
export interface RequestStatus extends RequestCounts {
  id: RequestId;
  job?: JobRef;
  /**
   * Each array task's state, when the scheduler could be asked; `undefined` when the request
   * has no job or its scheduler no longer knows it (a local job of an ended process).
   */
  taskStates?: Map<number, TaskState>;
  /** Why `taskStates` is missing, when it is. */
  schedulerError?: string;
}

/** What `recover` found. */
export interface RecoverOutcome {
  /** Report lines found in the job's output files for this request. */
  found: number;
  /** Reports stored now (the server never received them). */
  stored: number;
  /** Tasks still without a report. */
  missing: number;
}

/** Options of `cleanup`. */
export interface CleanupOptions {
  /** List only: change nothing, neither on the cluster nor in the store. @default false */
  dryRun?: boolean;
  /**
   * Remove every directory listed, also those of requests still running or that this store
   * does not hold (their results then cannot come home). @default false
   */
  force?: boolean;
}

/** A detached request's files on the cluster, as `cleanup` found them. */
export interface StagedRequest {
  /** The directory on the cluster (relative to the home directory unless absolute). */
  dir: string;
  /** The request it belongs to (in the store it names), from its manifest. */
  request?: RequestId;
  /** When it was submitted, in milliseconds since the epoch. */
  createdAt?: number;
  /** The machine that submitted it. */
  client?: string;
  /** The dbfile (or store) that holds its request. */
  store?: string;
  /** Spool files not yet collected. */
  spooled: number;
  /** Its size on the cluster. */
  bytes: number;
  /** When anything in it last changed, in milliseconds since the epoch. */
  modifiedAt: number;
  /**
   * `complete`: a request of this store whose every task has its report; `running`: one of this
   * store still waiting for reports; `other-store`: a request this store does not hold.
   */
  state: "complete" | "running" | "other-store";
  /** Whether it was removed now. */
  removed: boolean;
}

/** Where the dashboard listens. */
export interface DashboardOptions {
  /**
   * The address: loopback, so that only this machine (and an `ssh -L` tunnel to it) reaches
   * the page. @default "127.0.0.1"
   */
  host?: string;
  /** The port; 0 picks a free one. @default 0 */
  port?: number;
}

/** One task's outcome with the index of its arguments (0 for the first tuple given). */
export type IndexedSettled<R> = { index: number } & Settled<R>;

/** The orders `mapStream` can yield in; see {@link MapStreamOptions.order}. */
export type StreamOrder = "completion" | "arguments";

/** Options of `mapStream`. */
export interface MapStreamOptions
  extends Pick<MapOptions, "ns" | "signal" | "dashboard" | "retryWith" | "keepJob"> {
  /**
   * `"completion"`: each outcome as soon as it is in. `"arguments"`: in the order of the
   * arguments (an outcome waits for those before it). @default "completion"
   */
  order?: StreamOrder;
  /**
   * How many argument tuples are read from `args` and submitted together, as one request (its
   * own array job, its own id in the dbfile). At most four windows run at once; the next is
   * read only once the consumer has taken every outcome of the oldest. @default 200_000
   */
  windowSize?: number;
  /**
   * Called as results arrive (and at least every second), for each window on its own:
   * `progress.request` is the window's request, `progress.tasks` its tuples.
   */
  onProgress?: (progress: MapProgress) => void;
  /**
   * Aborting `signal` (or Ctrl-C / SIGTERM, where the instance handles signals) leaves the jobs
   * of the windows running instead of cancelling them. Leaving the loop still cancels them.
   * @default false
   */
  keepJob?: boolean;
}
