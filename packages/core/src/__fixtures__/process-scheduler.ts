import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import type { JobRef, Scheduler, TaskResources, TaskState } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";

/** What a {@link processScheduler} was asked, for tests to check. */
export interface ProcessSchedulerLog {
  checkedOptions: string[][];
  submitted: {
    name: string;
    tasks: number;
    options: readonly string[];
    resources: TaskResources | undefined;
  }[];
  memoryLimits: (number | undefined)[];
  /** The ids of the jobs cancelled. */
  cancelled: string[];
}

/**
 * A scheduler small enough to write in a test: each array task is a python3 process fed the
 * program on stdin. It takes its options from `geOpts`, refuses the option "--refused" and
 * asks each task to limit its memory when given "--mem=<bytes>".
 */
export function processScheduler(): Scheduler & { log: ProcessSchedulerLog } {
  const jobs = new Map<string, { states: Map<number, TaskState>; children: ChildProcess[] }>();
  const log: ProcessSchedulerLog = {
    checkedOptions: [],
    submitted: [],
    memoryLimits: [],
    cancelled: [],
  };
  let next = 0;
  return {
    name: "test-processes",
    optionsSetting: "geOpts",
    statusIntervalMs: 100,
    log,
    checkOptions(options) {
      log.checkedOptions.push([...options]);
      if (options.includes("--refused")) {
        throw new SheepdogError("CONFIG_INVALID", "test", 'The option "--refused" is refused.');
      }
    },
    memoryLimitBytes(options) {
      const mem = options.find((option) => option.startsWith("--mem="));
      const bytes = mem === undefined ? undefined : Number(mem.slice(6));
      log.memoryLimits.push(bytes);
      return bytes;
    },
    async submit(spec) {
      log.submitted.push({
        name: spec.name,
        tasks: spec.tasks,
        options: spec.options,
        resources: spec.resources,
      });
      const id = String(++next);
      const states = new Map<number, TaskState>();
      const children: ChildProcess[] = [];
      for (let task = 1; task <= spec.tasks; task++) {
        states.set(task, { state: "running" });
        const child = spawn(spec.shell, ["-"], {
          env: { ...process.env, SHEEPDOG_TASK_ID: String(task) },
          stdio: ["pipe", "ignore", "ignore"],
        });
        child.stdin?.end(spec.program);
        child.on("exit", (code, signal) => {
          states.set(task, {
            state: "finished",
            kind: signal ? "signal" : "exit",
            exitCode: code,
            signal: signal === null ? null : 9,
            reason: signal ? `killed by ${signal}` : `exited with ${code}`,
          });
        });
        children.push(child);
      }
      jobs.set(id, { states, children });
      const ref: JobRef = {
        scheduler: "test-processes",
        id,
        tasks: spec.tasks,
        parts: [{ jobId: id, firstTask: 1, lastTask: spec.tasks }],
        directory: spec.directory,
        name: spec.name,
      };
      return ref;
    },
    async status(job) {
      return new Map(jobs.get(job.id)?.states ?? []);
    },
    async cancel(job) {
      log.cancelled.push(job.id);
      for (const child of jobs.get(job.id)?.children ?? []) child.kill("SIGKILL");
    },
  };
}
