import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { availableParallelism, constants, homedir } from "node:os";
import { isAbsolute, join } from "node:path";
import type { JobRef, JobSpec, Scheduler, TaskState } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";

export interface LocalSchedulerOptions {
  /**
   * How many tasks run at once, across every job of this scheduler.
   * @default os.availableParallelism()
   */
  concurrency?: number;
  /** What relative job directories are resolved against. @default os.homedir() */
  home?: string;
}

interface LocalTask {
  number: number;
  state: TaskState;
  kill?: (signal: NodeJS.Signals) => void;
}

interface LocalJob {
  ref: JobRef;
  spec: JobSpec;
  scriptPath: string;
  directory: string;
  tasks: LocalTask[];
}

const signalNumbers = constants.signals as Record<string, number | undefined>;

/**
 * A `Scheduler` that runs each array task as a local process (`shell program.py`), a bounded
 * number at a time: `map` on a laptop, with no cluster. Each task sees its number in
 * `SHEEPDOG_TASK_ID` and writes `<name>.o<job>.<task>` / `.e<job>.<task>` beside its script,
 * as GridEngine would. Scheduler options (`geOpts`) have no meaning here and are ignored.
 *
 * @example
 * ```ts
 * const scheduler = localScheduler({ concurrency: 4 });
 * const job = await scheduler.submit({ name: "demo", tasks: 3, program, shell: "/usr/bin/python3", options: [], directory: ".sheepdog" });
 * ```
 */
export function localScheduler(options: LocalSchedulerOptions = {}): Scheduler {
  const concurrency = options.concurrency ?? availableParallelism();
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      "local",
      `concurrency must be a positive integer, not ${String(concurrency)}.`,
    );
  }
  const home = options.home ?? homedir();
  const jobs = new Map<string, LocalJob>();
  let waiting: { job: LocalJob; task: LocalTask }[] = [];
  let waitingHead = 0;
  let running = 0;
  let nextJob = 1;
  let closed = false;

  function startNext(): void {
    while (running < concurrency && waitingHead < waiting.length) {
      const next = waiting[waitingHead++];
      if (next && next.task.state.state === "queued") run(next.job, next.task);
    }
    if (waitingHead > 1024 && waitingHead * 2 > waiting.length) {
      waiting = waiting.slice(waitingHead);
      waitingHead = 0;
    }
  }

  function run(job: LocalJob, task: LocalTask): void {
    running += 1;
    const base = join(job.directory, `${job.spec.name}.`);
    const out = openSync(`${base}o${job.ref.id}.${task.number}`, "w", 0o600);
    const err = openSync(`${base}e${job.ref.id}.${task.number}`, "w", 0o600);
    let settled = false;
    const finish = (state: TaskState) => {
      if (settled) return;
      settled = true;
      closeSync(out);
      closeSync(err);
      task.state = state;
      task.kill = undefined;
      running -= 1;
      startNext();
    };
    const child = spawn(job.spec.shell, [job.scriptPath], {
      cwd: job.directory,
      env: { ...process.env, SHEEPDOG_TASK_ID: String(task.number) },
      stdio: ["ignore", out, err],
    });
    task.state = { state: "running", host: "localhost" };
    task.kill = (signal) => child.kill(signal);
    child.on("error", (error) =>
      finish({
        state: "finished",
        exitCode: 127,
        signal: null,
        reason: `could not start ${job.spec.shell}: ${error.message}`,
      }),
    );
    child.on("exit", (code, signal) => {
      const signalNumber = signal ? (signalNumbers[signal] ?? null) : null;
      finish({
        state: "finished",
        exitCode: code,
        signal: signalNumber,
        reason: signal
          ? `killed by signal ${signalNumber ?? "?"} (${signal})`
          : `exited with status ${code}`,
      });
    });
  }

  function jobOf(ref: JobRef): LocalJob {
    const job = jobs.get(ref.id);
    if (!job) {
      throw new SheepdogError(
        "SCHEDULER_FAILED",
        "local",
        `Job ${ref.id} was not submitted by this local scheduler (local jobs live only as long as the process that ran them).`,
      );
    }
    return job;
  }

  function stop(job: LocalJob): void {
    for (const task of job.tasks) {
      if (task.state.state === "queued") {
        task.state = {
          state: "finished",
          exitCode: null,
          signal: null,
          reason: "cancelled before it started",
        };
      } else if (task.kill) {
        task.kill("SIGTERM");
        const kill = task.kill;
        setTimeout(() => kill("SIGKILL"), 2_000).unref();
      }
    }
  }

  return {
    name: "local",
    statusIntervalMs: 200,

    async submit(spec) {
      if (closed) throw new SheepdogError("CLOSED", "local", "The local scheduler is closed.");
      if (!Number.isInteger(spec.tasks) || spec.tasks < 1) {
        throw new SheepdogError(
          "SUBMIT_FAILED",
          "local",
          `A job needs at least one task, not ${spec.tasks}.`,
        );
      }
      const directory = isAbsolute(spec.directory) ? spec.directory : join(home, spec.directory);
      const id = `${process.pid}.${nextJob++}`;
      let scriptPath: string;
      try {
        mkdirSync(directory, { recursive: true, mode: 0o700 });
        scriptPath = join(directory, `${spec.name}.py`);
        writeFileSync(scriptPath, spec.program, { mode: 0o600 });
      } catch (error) {
        throw SheepdogError.from(
          error,
          "SUBMIT_FAILED",
          "local",
          `Cannot write the job script into ${directory}`,
        );
      }
      const ref: JobRef = {
        scheduler: "local",
        id,
        tasks: spec.tasks,
        parts: [{ jobId: id, firstTask: 1, lastTask: spec.tasks }],
        directory,
        name: spec.name,
      };
      const job: LocalJob = { ref, spec, scriptPath, directory, tasks: [] };
      for (let number = 1; number <= spec.tasks; number++) {
        const task: LocalTask = { number, state: { state: "queued" } };
        job.tasks.push(task);
        waiting.push({ job, task });
      }
      jobs.set(id, job);
      startNext();
      return ref;
    },

    async status(ref) {
      const job = jobOf(ref);
      return new Map(job.tasks.map((task) => [task.number, task.state]));
    },

    async slots() {
      return concurrency;
    },

    async cancel(ref) {
      stop(jobOf(ref));
    },

    async close() {
      closed = true;
      for (const job of jobs.values()) stop(job);
    },
  };
}
