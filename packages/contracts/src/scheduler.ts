import type { Remote } from "./remote.js";
import type { TaskResources } from "./resources.js";

/** What to run: an array job of `tasks` tasks, each running `program` with `shell`. */
export interface JobSpec {
  /**
   * A name unique across every request from every store, used for the job and its files.
   * Only `[A-Za-z0-9_.-]`, starting with a letter or `_` (GridEngine refuses a leading digit).
   */
  name: string;
  /** How many array tasks; they are numbered 1 .. tasks. */
  tasks: number;
  /**
   * The Python program each task runs, as-is, with the task's number in the environment
   * (`SGE_TASK_ID`, `SLURM_ARRAY_TASK_ID`, `PBS_ARRAY_INDEX` or `SHEEPDOG_TASK_ID`).
   */
  program: string;
  /** The interpreter that runs the program (GridEngine's `-S`, the shebang). */
  shell: string;
  /**
   * Scheduler-native options, one option and its value per string (`"-l h_rt=0:10:0"`).
   * They MUST NOT be able to inject a shell command or a second directive.
   */
  options: readonly string[];
  /** Where the job's files go on the cluster (relative to the login user's home). */
  directory: string;
  /**
   * What each array task needs, in no scheduler's dialect (already scaled to the calls one
   * task runs): each scheduler writes its own requests for them (`-l h_rt`, `--time`, ...).
   */
  resources?: TaskResources;
}

/**
 * A submitted job. JSON-serialisable, so that it can be stored with its request and used
 * by another process (`sheepdog cancel`).
 */
export interface JobRef {
  /** Which scheduler made it ("gridengine", "slurm", "local", ...). */
  scheduler: string;
  /** The job's name as the user sees it (`"123"`, or `"123,124"` when split). */
  id: string;
  /** How many tasks in all. */
  tasks: number;
  /**
   * The scheduler-native jobs it was submitted as, each covering tasks
   * `firstTask .. lastTask` (1-based, inclusive) of the whole.
   */
  parts: { jobId: string; firstTask: number; lastTask: number }[];
  /** Where its output files are (the `directory` of its spec), for recovery. */
  directory: string;
  /** The name of the spec it was submitted with. */
  name: string;
}

/**
 * Why a task ended without reporting, in the same words on every scheduler, so that a retry
 * can ask for more memory after `out-of-memory` and more time after `time-limit`:
 *
 * - `out-of-memory`: over its memory limit (killed, or Python's `MemoryError` under it);
 * - `time-limit`: over its run-time limit;
 * - `node-failure`: its node (or the scheduler's daemon on it) failed under it;
 * - `cancelled`: cancelled by a person or an administrator (`qdel`, `scancel`);
 * - `preempted`: stopped for a job of higher priority;
 * - `signal`: killed by a signal for another reason;
 * - `exit`: its program exited by itself (non-zero, or zero without reporting);
 * - `never-started`: the scheduler could not start it (no such interpreter, a bad directory);
 * - `unknown`: the scheduler has no record of how it ended.
 */
export const deathKinds = [
  "out-of-memory",
  "time-limit",
  "node-failure",
  "cancelled",
  "preempted",
  "signal",
  "exit",
  "never-started",
  "unknown",
] as const;

/** One of {@link deathKinds}. */
export type DeathKind = (typeof deathKinds)[number];

/** Why and how a finished task ended, as far as the scheduler knows. */
export interface TaskEnd {
  /** What it died of, in the same words on every scheduler. */
  kind: DeathKind;
  /** The scheduler's own word for how it ended (Slurm's `TIMEOUT`), when it has one. */
  schedulerState?: string;
  /** The exit status, or `null` when unknown. */
  exitCode: number | null;
  /** The number of the signal that ended it, or `null`. */
  signal: number | null;
  /** The scheduler's own failure code and text (qacct's `failed 37 : ...`), when it failed. */
  failed?: { code: number; text: string };
  /** The peak virtual memory in bytes, when known. */
  maxvmemBytes?: number;
  /** The peak resident memory in bytes, when known (Slurm's MaxRSS). */
  maxRssBytes?: number;
  /** A sentence for people: "killed by signal 9", "exceeded its run time limit (h_rt)", ... */
  reason: string;
}

/** Where one task is. */
export type TaskState =
  | {
      state: "queued";
      /**
       * Set when the scheduler holds the task in an error state that it will not leave by
       * itself (GridEngine's `Eqw`), saying why: `unable to find shell "/usr/bin/python3"`.
       */
      error?: string;
    }
  | { state: "running"; host?: string }
  | ({ state: "finished" } & TaskEnd)
  /** The scheduler no longer knows the task and has no record of how it ended (yet). */
  | { state: "unknown" };

/**
 * Runs array jobs: GridEngine over a `Remote` (`@sheepdog/gridengine`), or local processes
 * (`@sheepdog/local`). What only one scheduler knows (its options, its output files, its
 * memory requests, its causes of death) stays behind this interface.
 */
export interface Scheduler {
  /** Its name, as in {@link JobRef.scheduler}. */
  readonly name: string;

  /**
   * The configuration setting whose options this scheduler takes (`"geOpts"`, `"slurmOpts"`):
   * callers pass those as {@link JobSpec.options}, and refuse options given under another
   * scheduler's setting. A scheduler that ignores options (the local one) leaves it out.
   */
  readonly optionsSetting?: string;

  /**
   * How often `status` is worth calling while a job runs, in milliseconds: cheap local
   * bookkeeping can be asked often, a cluster's qstat less so. @default 2000
   */
  readonly statusIntervalMs?: number;

  /**
   * Submits the job and resolves once the scheduler has accepted it. A spec it cannot take
   * (no tasks, a name it cannot use) rejects with `INVALID_INPUT`; a refusal by the scheduler
   * itself with `SUBMIT_FAILED` and the scheduler's own message.
   */
  submit(spec: JobSpec): Promise<JobRef>;

  /**
   * The state of each task, keyed by task number (1 .. tasks); every task has an entry.
   * MUST NOT report `finished` for a task that may still report its result.
   */
  status(job: JobRef): Promise<Map<number, TaskState>>;

  /**
   * How many tasks can run at once (the slots of the queues it would use, busy or free), when
   * the scheduler can tell: callers size their chunks by it. Rejects when it cannot be asked.
   */
  slots?(): Promise<number>;

  /**
   * Reads ahead what `submit` will need to ask the cluster (GridEngine's `max_aj_tasks`, Slurm's
   * configuration), so that it is at hand by the time the job is submitted. Callers may call it
   * as soon as they hold the scheduler and go on without waiting. It never rejects: what it
   * could not read, `submit` asks again. `job.mostTasks`, when the caller knows it, is the most
   * tasks the job will have: a scheduler need not read what such a job cannot need.
   */
  prepare?(job?: { mostTasks: number }): Promise<void>;

  /** Cancels every task that has not finished. Cancelling a finished job is harmless. */
  cancel(job: JobRef): Promise<void>;

  /**
   * Cancels tasks `tasks` of the job (task numbers of the whole job, 1 .. `job.tasks`), queued
   * or running, and leaves its other tasks alone; cancelling a task that ended is harmless. A
   * number outside the job rejects with `INVALID_INPUT`, before anything is cancelled. Core
   * cancels the tasks that can find no work (every call of theirs claimed by other tasks), so
   * that they do not start, take a slot and end at once; a scheduler without it has such tasks
   * cancelled with the job at its end.
   */
  cancelTasks?(job: JobRef, tasks: readonly number[]): Promise<void>;

  /**
   * Checks scheduler-native options before anything is submitted, as `submit` would. MUST
   * throw a `SheepdogError` with code `CONFIG_INVALID` that names the option and the fix for
   * one it would refuse: an injection (any option holding a line break MUST be refused), a
   * managed option such as GridEngine's `-t`, a value it cannot read (`-l mem_grab=2GB`).
   * Callers call it for every attempt's options before submitting any job. A scheduler that
   * ignores options (the local one) leaves it out.
   */
  checkOptions?(options: readonly string[]): void;

  /**
   * The memory limit, in bytes, that `options` ask each task to hold itself to, or `undefined`
   * for none (GridEngine's `-l mem_grab=2G`). The worker applies it with `setrlimit`, so a
   * task over it fails with Python's `MemoryError` rather than being killed.
   */
  memoryLimitBytes?(options: readonly string[]): number | undefined;

  /**
   * Every line of the job's task output (each task's stdout, on the cluster) that contains
   * `marker`, in any order: the workers print each report there, so that results survive a
   * server that never came back. Resolves with an empty list when the job left no output.
   * Reads only this job's output, not that of another job whose name starts with its name
   * (a retry's `<name>_r2`). `marker` is one non-empty line, matched as plain text; anything
   * else, or a JobRef of another scheduler, rejects with `INVALID_INPUT`.
   */
  outputLines?(job: JobRef, marker: string): Promise<string[]>;

  /**
   * Releases what the scheduler holds (not the Remote it was given). Afterwards `submit` MUST
   * reject with `CLOSED`; closing twice is harmless.
   */
  close?(): Promise<void>;
}

/**
 * Where jobs run: a scheduler, and the machine its commands run on (the cluster's head node
 * over SSH, or this machine). `@sheepdog/core` takes one as a value:
 * `createSheepdog({ store, cluster: { scheduler, remote } })`.
 */
export interface Cluster {
  readonly scheduler: Scheduler;
  readonly remote: Remote;
}
