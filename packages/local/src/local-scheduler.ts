import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism, homedir } from "node:os";
import { isAbsolute, join } from "node:path";
import type { JobRef, JobSpec, Scheduler } from "@sheepdog/contracts";
import { partTaskRuns, SheepdogError } from "@sheepdog/contracts";
import { readOutputLines } from "./internal/output-files.js";
import { source } from "./internal/source.js";
import type { LocalJob, LocalTask } from "./internal/task-runner.js";
import { TaskRunner } from "./internal/task-runner.js";

/** The names `JobSpec.name` allows; they become file names in the job directory. */
const namePattern = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** Options of {@link localScheduler}. */
export interface LocalSchedulerOptions {
  /**
   * How many tasks run at once, across every job of this scheduler.
   * @default os.availableParallelism()
   */
  concurrency?: number;
  /** What relative job directories are resolved against. @default os.homedir() */
  home?: string;
  /**
   * Whether `close()` leaves the tasks of submitted jobs running, so that they outlive the
   * program and report to a later server (`sheepdog map --async`): the running ones go on, and
   * the queued ones are handed to a process of their own (`node`, in its own session) that
   * starts them as slots free, so every task runs even if the program exits at once.
   * @default false: `close()` cancels every job
   */
  keepTasksOnClose?: boolean;
}

/**
 * The local scheduler: a `Scheduler` with `slots`, `cancelTasks`, `outputLines`, `close` and
 * `await using`.
 */
export interface LocalScheduler extends Scheduler, AsyncDisposable {
  slots(): Promise<number>;
  cancelTasks(job: JobRef, tasks: readonly number[]): Promise<void>;
  outputLines(job: JobRef, marker: string): Promise<string[]>;
  close(): Promise<void>;
  /**
   * Closes the scheduler leaving its jobs to run, as `close()` does with
   * {@link LocalSchedulerOptions.keepTasksOnClose}: every task runs, even if the program exits
   * at once.
   */
  detach(): Promise<void>;
}

function checkJobName(name: unknown): void {
  if (typeof name !== "string" || !namePattern.test(name)) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `Job name ${JSON.stringify(name)} cannot be used: it needs a letter or "_" first, then only letters, digits, "_", "." and "-".`,
    );
  }
}

/** Writes the job's program as `<directory>/<name>.py` (mode 0600); returns its path. */
function writeScript(directory: string, spec: JobSpec): string {
  try {
    mkdirSync(directory, { recursive: true, mode: 0o700 });
    const scriptPath = join(directory, `${spec.name}.py`);
    writeFileSync(scriptPath, spec.program, { mode: 0o600 });
    return scriptPath;
  } catch (error) {
    throw SheepdogError.from(
      error,
      "SUBMIT_FAILED",
      source,
      `Cannot write the job script into ${directory}`,
    );
  }
}

/** A job of `spec` with id `id`, every task queued. */
function newJob(spec: JobSpec, directory: string, scriptPath: string, id: string): LocalJob {
  const ref: JobRef = {
    scheduler: source,
    id,
    tasks: spec.tasks,
    parts: [{ jobId: id, firstTask: 1, lastTask: spec.tasks }],
    directory,
    name: spec.name,
  };
  const tasks = Array.from(
    { length: spec.tasks },
    (_, i): LocalTask => ({
      number: i + 1,
      state: { state: "queued" },
    }),
  );
  return { ref, spec, scriptPath, directory, tasks };
}

/**
 * A `Scheduler` that runs each array task as a local process (`shell program.py`), a bounded
 * number at a time: `map` on a laptop, with no cluster. Each task sees its number in
 * `SHEEPDOG_TASK_ID` and writes `<name>.o<job>.<task>` / `.e<job>.<task>` beside its script,
 * as GridEngine would; `outputLines` reads them back, in this process or a later one.
 * `cancel` stops every task of a job and `cancelTasks` only those named: a queued one ends
 * "cancelled before it started", a running one gets SIGTERM (SIGKILL 2 s later).
 *
 * Scheduler options (`JobSpec.options`, `geOpts`) have no meaning here and are ignored, so a
 * configuration written for a cluster runs locally unchanged: there is no `checkOptions` (none
 * is refused) and no `memoryLimitBytes` (no option sets a memory limit).
 *
 * @example
 * ```ts
 * const scheduler = localScheduler({ concurrency: 4 });
 * const job = await scheduler.submit({ name: "demo", tasks: 3, program, shell: "/usr/bin/python3", options: [], directory: ".sheepdog" });
 * ```
 */
export function localScheduler(options: LocalSchedulerOptions = {}): LocalScheduler {
  const concurrency = options.concurrency ?? availableParallelism();
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `concurrency must be a positive integer, not ${String(concurrency)}.`,
    );
  }
  const home = options.home ?? homedir();
  const resolve = (directory: string) =>
    isAbsolute(directory) ? directory : join(home, directory);
  const runner = new TaskRunner(concurrency);
  const jobs = new Map<string, LocalJob>();
  let nextJob = 1;
  let closed = false;

  function jobOf(ref: JobRef): LocalJob {
    const job = jobs.get(ref.id);
    if (!job) {
      throw new SheepdogError(
        "SCHEDULER_FAILED",
        source,
        `Job ${ref.id} was not submitted by this local scheduler (local jobs live only as long as the process that ran them).`,
      );
    }
    return job;
  }

  async function close(keep = options.keepTasksOnClose === true): Promise<void> {
    if (closed) return;
    closed = true;
    if (keep) runner.handOver();
    else for (const job of jobs.values()) runner.stop(job.tasks);
  }

  return {
    name: source,
    statusIntervalMs: 200,

    async submit(spec) {
      if (closed) throw new SheepdogError("CLOSED", source, "The local scheduler is closed.");
      if (!Number.isInteger(spec.tasks) || spec.tasks < 1) {
        throw new SheepdogError(
          "INVALID_INPUT",
          source,
          `A job needs at least one task, not ${spec.tasks}.`,
        );
      }
      checkJobName(spec.name);
      const directory = resolve(spec.directory);
      const scriptPath = writeScript(directory, spec);
      const job = newJob(spec, directory, scriptPath, `${process.pid}.${nextJob++}`);
      jobs.set(job.ref.id, job);
      runner.enqueue(job);
      return job.ref;
    },

    async status(ref) {
      const job = jobOf(ref);
      return new Map(job.tasks.map((task) => [task.number, task.state]));
    },

    async slots() {
      return concurrency;
    },

    async cancel(ref) {
      runner.stop(jobOf(ref).tasks);
    },

    async cancelTasks(ref, numbers) {
      const job = jobOf(ref);
      partTaskRuns(job.ref, numbers, { source }); // throws INVALID_INPUT before anything stops
      const named = new Set(numbers);
      runner.stop(job.tasks.filter((task) => named.has(task.number)));
    },

    async outputLines(ref, marker) {
      if (ref?.scheduler !== source) {
        throw new SheepdogError(
          "INVALID_INPUT",
          source,
          `${JSON.stringify(ref)?.slice(0, 200)} is not a job of the local scheduler. Pass the JobRef that submit() returned.`,
        );
      }
      checkJobName(ref.name);
      return readOutputLines(resolve(ref.directory), ref.name, marker);
    },

    close: () => close(),
    detach: () => close(true),
    [Symbol.asyncDispose]: () => close(),
  };
}
