import type { JobRef, RequestCounts, RequestId, TaskState } from "@sheepdog/contracts";

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
}

/** What an attempt of a map runs with; see {@link MapOptions.retryWith}. */
export interface AttemptOptions {
  /** The scheduler options of the attempt (the configuration's `geOpts` at first). */
  geOpts: string[];
}

/** Options of `map` and `mapSettled`. */
export interface MapOptions extends MapAsyncOptions {
  /** Progress on stderr, and a pointer to the errors at the end. @default false */
  verbose?: boolean;
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
   * (2 for the first retry) with what the previous attempt ran with; returns what to change,
   * or nothing to keep it. The options returned are checked as `geOpts` in the configuration.
   *
   * @example More memory each time:
   * ```ts
   * await map(f, args, { host: "fear", retries: 2, geOpts: ["-l h_vmem=2G"] }, {
   *   retryWith: (attempt) => ({ geOpts: [`-l h_vmem=${attempt * 2}G`] }),
   * });
   * ```
   */
  retryWith?: (
    attempt: number,
    previous: AttemptOptions,
  ) => Partial<AttemptOptions> | undefined | Promise<Partial<AttemptOptions> | undefined>;
}

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
