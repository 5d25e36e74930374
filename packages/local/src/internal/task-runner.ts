import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { constants } from "node:os";
import { join } from "node:path";
import type { JobRef, JobSpec, TaskState } from "@sheepdog/contracts";
import type { HandedJob } from "./hand-over.js";
import { handOver, runsOf } from "./hand-over.js";

/** One task of a local job. */
export interface LocalTask {
  number: number;
  state: TaskState;
  kill?: (signal: NodeJS.Signals) => void;
  /** The process id of its process, while it runs. */
  pid?: number;
  /** Set when `stop` killed it, so that its end reads as cancelled rather than killed. */
  cancelled?: boolean;
}

/** A job this process runs: its spec, where its files are, and its tasks. */
export interface LocalJob {
  ref: JobRef;
  spec: JobSpec;
  scriptPath: string;
  directory: string;
  tasks: LocalTask[];
}

const signalNumbers = constants.signals as Record<string, number | undefined>;

/** How a task's process ended, as a finished {@link TaskState}. */
function ended(code: number | null, signal: NodeJS.Signals | null, cancelled: boolean): TaskState {
  const signalNumber = signal ? (signalNumbers[signal] ?? null) : null;
  const reason = signal
    ? `killed by signal ${signalNumber ?? "?"} (${signal})`
    : `exited with status ${code}`;
  return {
    state: "finished",
    kind: cancelled ? "cancelled" : signal ? "signal" : "exit",
    exitCode: code,
    signal: signalNumber,
    reason: cancelled ? `cancelled: ${reason}` : reason,
  };
}

/**
 * Runs the tasks of local jobs as child processes (`shell script`), at most `concurrency` at
 * once across every job, in submission order.
 */
export class TaskRunner {
  private waiting: { job: LocalJob; task: LocalTask }[] = [];
  private head = 0;
  private running = 0;

  constructor(private readonly concurrency: number) {}

  /** Queues every task of `job`, and starts as many as there are free slots. */
  enqueue(job: LocalJob): void {
    for (const task of job.tasks) this.waiting.push({ job, task });
    this.startNext();
  }

  /** Drops the queued ones of `tasks`; sends SIGTERM to the running ones (SIGKILL 2 s later). */
  stop(tasks: Iterable<LocalTask>): void {
    for (const task of tasks) {
      if (task.state.state === "queued") {
        task.state = {
          state: "finished",
          kind: "cancelled",
          exitCode: null,
          signal: null,
          reason: "cancelled before it started",
        };
      } else if (task.kill) {
        task.cancelled = true;
        const kill = task.kill;
        kill("SIGTERM");
        setTimeout(() => kill("SIGKILL"), 2_000).unref();
      }
    }
  }

  /**
   * Hands every queued task to a process of its own that starts them as slots free (the tasks
   * running here hold theirs until they end), so that they run even if this process exits now.
   * They read as running here from then on; this runner starts nothing more.
   */
  handOver(): void {
    const byJob = new Map<LocalJob, number[]>();
    for (const { job, task } of this.waiting.slice(this.head)) {
      if (task.state.state !== "queued") continue;
      task.state = { state: "running", host: "localhost" };
      byJob.set(job, [...(byJob.get(job) ?? []), task.number]);
    }
    this.waiting = [];
    this.head = 0;
    const jobs: HandedJob[] = [...byJob].map(([job, numbers]) => ({
      shell: job.spec.shell,
      script: job.scriptPath,
      directory: job.directory,
      prefix: join(job.directory, `${job.spec.name}.`),
      jobId: job.ref.id,
      runs: runsOf(numbers),
    }));
    const spec = { concurrency: this.concurrency, runningPids: this.runningPids(), jobs };
    handOver(spec, (jobId, number, code, signal) => {
      const job = [...byJob.keys()].find((j) => j.ref.id === jobId);
      const task = job?.tasks[number - 1];
      if (task) task.state = ended(code, signal as NodeJS.Signals | null, false);
    });
  }

  private readonly pids = new Set<number>();

  private runningPids(): number[] {
    return [...this.pids];
  }

  private startNext(): void {
    while (this.running < this.concurrency && this.head < this.waiting.length) {
      const next = this.waiting[this.head++];
      if (next && next.task.state.state === "queued") this.run(next.job, next.task);
    }
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
  }

  /** Starts one task, its stdout and stderr in `<name>.o<job>.<task>` / `.e<job>.<task>`. */
  private run(job: LocalJob, task: LocalTask): void {
    this.running += 1;
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
      if (task.pid !== undefined) this.pids.delete(task.pid);
      task.pid = undefined;
      this.running -= 1;
      this.startNext();
    };
    const child = spawn(job.spec.shell, [job.scriptPath], {
      cwd: job.directory,
      env: { ...process.env, SHEEPDOG_TASK_ID: String(task.number) },
      stdio: ["ignore", out, err],
    });
    task.state = { state: "running", host: "localhost" };
    task.kill = (signal) => child.kill(signal);
    if (child.pid !== undefined) {
      task.pid = child.pid;
      this.pids.add(child.pid);
    }
    child.on("error", (error) =>
      finish({
        state: "finished",
        kind: "never-started",
        exitCode: 127,
        signal: null,
        reason: `could not start ${job.spec.shell}: ${error.message}`,
      }),
    );
    child.on("exit", (code, signal) => finish(ended(code, signal, task.cancelled === true)));
  }
}
