import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SheepdogError } from "../errors.js";
import type { JobRef, JobSpec, Scheduler, TaskState } from "../scheduler.js";

/** Makes the scheduler under test. The suite closes each one it makes. */
export type SchedulerFactory = () => Scheduler | Promise<Scheduler>;

/** Options of {@link describeSchedulerContract}. */
export interface SchedulerContractOptions {
  /**
   * Where the suite's jobs put their files (`JobSpec.directory`): relative to the home of the
   * machine the jobs run on, or absolute. Use a fresh directory; the suite does not remove it.
   */
  directory: string;
  /** The Python 3 interpreter the tasks run with (`JobSpec.shell`). @default "/usr/bin/python3" */
  shell?: string;
  /**
   * Scheduler-native options every job of the suite gets (a run-time limit, a queue). They
   * MUST NOT ask for a memory limit. @default []
   */
  jobOptions?: readonly string[];
  /**
   * Options that ask for a memory limit, and the bytes `memoryLimitBytes` must answer for
   * them (`{ options: ["-l mem_grab=2G"], bytes: 2 * 1024 ** 3 }`). Checked when given.
   */
  memoryRequest?: { options: readonly string[]; bytes: number };
  /** Timeout of each test that runs jobs, in milliseconds. @default 60_000 */
  timeout?: number;
}

/** The whole states of a job, at one poll. */
type States = Map<number, TaskState>;

const taskStates = ["queued", "running", "finished", "unknown"];

/** Python that prints the task's number, from whichever variable the scheduler sets. */
const readTaskNumber = [
  "import os, signal, sys, time",
  'names = ("SHEEPDOG_TASK_ID", "SGE_TASK_ID", "SLURM_ARRAY_TASK_ID", "PBS_ARRAY_INDEX")',
  "found = [os.environ[name] for name in names if os.environ.get(name)]",
  "if not found:",
  '    sys.exit("no task number in SHEEPDOG_TASK_ID, SGE_TASK_ID, SLURM_ARRAY_TASK_ID or PBS_ARRAY_INDEX")',
  "task = int(found[0])",
];

/**
 * The three-task program: each task prints a marked and an unmarked line with its number;
 * task 1 succeeds, task 2 SIGKILLs itself, task 3 exits with status 3 (its number).
 */
function mainProgram(marker: string): string {
  return [
    ...readTaskNumber,
    `print(${JSON.stringify(marker)} + " task=%d" % task, flush=True)`,
    'print("unmarked task=%d" % task, flush=True)',
    "if task == 2:",
    "    os.kill(os.getpid(), signal.SIGKILL)",
    "    time.sleep(30)",
    "if task == 3:",
    "    sys.exit(3)",
    "",
  ].join("\n");
}

/** A one-task program that prints a marked line, then sleeps far longer than the suite. */
function longProgram(marker: string): string {
  return `import time\nprint(${JSON.stringify(marker)} + " long", flush=True)\ntime.sleep(600)\n`;
}

/** Asserts that `job` is a JobRef for `spec` from `scheduler`, parts covering 1..tasks. */
function expectJobRef(job: JobRef, spec: JobSpec, scheduler: Scheduler): void {
  expect(job.scheduler).toBe(scheduler.name);
  expect(job.tasks).toBe(spec.tasks);
  expect(job.name).toBe(spec.name);
  expect(typeof job.id === "string" && job.id !== "", `id ${JSON.stringify(job.id)}`).toBe(true);
  expect(typeof job.directory === "string" && job.directory !== "").toBe(true);
  const parts = [...job.parts].sort((a, b) => a.firstTask - b.firstTask);
  expect(parts.length).toBeGreaterThan(0);
  let next = 1;
  for (const part of parts) {
    expect(typeof part.jobId === "string" && part.jobId !== "").toBe(true);
    expect(part.firstTask, `parts ${JSON.stringify(parts)} leave a gap or overlap`).toBe(next);
    expect(part.lastTask).toBeGreaterThanOrEqual(part.firstTask);
    next = part.lastTask + 1;
  }
  expect(next - 1, "the parts end at the last task").toBe(spec.tasks);
  expect(JSON.parse(JSON.stringify(job)), "a JobRef is JSON").toEqual(job);
}

/** Asserts that a finished task did not succeed, and says how it ended. */
function expectFailed(state: TaskState | undefined, what: string): void {
  expect(state?.state, `${what}: ${JSON.stringify(state)}`).toBe("finished");
  if (state?.state !== "finished") return;
  expect(state.exitCode, `${what} is not a success: ${JSON.stringify(state)}`).not.toBe(0);
  expect(state.exitCode !== null || state.signal !== null, `${what} says how it ended`).toBe(true);
  expect(typeof state.reason === "string" && state.reason !== "").toBe(true);
}

/** Calls `fn` and returns what it threw, failing the test when it throws nothing. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected a SheepdogError, but nothing was thrown");
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** One run of the suite: its scheduler, the jobs it submitted, and the shared main job. */
class ContractRun {
  /** Set by the suite's `beforeAll`. */
  scheduler!: Scheduler;
  readonly submitted: JobRef[] = [];
  readonly marker: string;
  readonly jobOptions: readonly string[];
  readonly timeout: number;
  readonly mainSpec: JobSpec;
  private readonly id = randomBytes(4).toString("hex");
  private names = 0;
  private mainSubmitted: Promise<JobRef> | undefined;
  private mainFinished: Promise<States> | undefined;

  constructor(readonly options: SchedulerContractOptions) {
    this.marker = `SDCONTRACT-${this.id}`;
    this.jobOptions = options.jobOptions ?? [];
    this.timeout = options.timeout ?? 60_000;
    this.mainSpec = this.spec(mainProgram(this.marker), 3);
  }

  /** A spec with a fresh name (`sdc_<run>_<n>`, plus `suffix`). */
  spec(program: string, tasks: number, suffix = ""): JobSpec {
    this.names += 1;
    return {
      name: `sdc_${this.id}_${this.names}${suffix}`,
      tasks,
      program,
      shell: this.options.shell ?? "/usr/bin/python3",
      options: this.jobOptions,
      directory: this.options.directory,
    };
  }

  async submit(job: JobSpec): Promise<JobRef> {
    const ref = await this.scheduler.submit(job);
    this.submitted.push(ref);
    return ref;
  }

  /** The three-task job, submitted once by whichever test needs it first. */
  main(): Promise<JobRef> {
    this.mainSubmitted ??= this.submit(this.mainSpec);
    return this.mainSubmitted;
  }

  /** The main job's states once every task has finished. */
  mainStates(): Promise<States> {
    this.mainFinished ??= this.main().then((job) => this.waitFor(job, allFinished));
    return this.mainFinished;
  }

  private get interval(): number {
    return Math.min(this.scheduler.statusIntervalMs ?? 2000, 500);
  }

  private get deadline(): number {
    return Date.now() + this.timeout - 2 * this.interval - 1000;
  }

  /** Polls `status` (on a JSON copy of the ref) until `done`; checks every answer's shape. */
  async waitFor(job: JobRef, done: (states: States) => boolean): Promise<States> {
    const copy = JSON.parse(JSON.stringify(job)) as JobRef;
    const every = Array.from({ length: job.tasks }, (_, i) => i + 1);
    const deadline = this.deadline;
    for (;;) {
      const states = await this.scheduler.status(copy);
      expect(
        [...states.keys()].sort((a, b) => a - b),
        "an entry for every task",
      ).toEqual(every);
      for (const state of states.values()) expect(taskStates).toContain(state.state);
      if (done(states)) return states;
      if (Date.now() > deadline) {
        throw new Error(`Job ${job.id} did not get there in time: ${JSON.stringify([...states])}`);
      }
      await sleep(this.interval);
    }
  }

  /**
   * Waits until task 1 of `job` runs its program: until `outputLines` shows `line` when the
   * scheduler has it, else a second after `status` says `running`.
   */
  async waitUntilPrinted(job: JobRef, line: string): Promise<void> {
    await this.waitFor(job, (states) => states.get(1)?.state === "running");
    if (!this.scheduler.outputLines) return sleep(1000);
    const deadline = this.deadline;
    while (!(await this.scheduler.outputLines(job, this.marker)).includes(line)) {
      if (Date.now() > deadline) throw new Error(`Job ${job.id} never printed ${line}`);
      await sleep(this.interval);
    }
  }
}

const allFinished = (states: States) =>
  [...states.values()].every((state) => state.state === "finished");

const cancelledOrEnded = (states: States) =>
  [...states.values()].every((state) => state.state === "finished" || state.state === "unknown");

/** The tests that run jobs: they run side by side, sharing the main job. */
function describeJobs(run: ContractRun): void {
  const { timeout, marker } = run;
  describe.concurrent("jobs", () => {
    it("submit returns a JobRef naming the job, its tasks and parts covering them", {
      timeout,
    }, async () => {
      expectJobRef(await run.main(), run.mainSpec, run.scheduler);
    });

    it("status reaches finished: exit code 0 for success, a failure for a self-SIGKILL", {
      timeout,
    }, async () => {
      const states = await run.mainStates();
      expect(states.get(1)).toMatchObject({
        state: "finished",
        kind: "exit",
        exitCode: 0,
        signal: null,
      });
      expectFailed(states.get(2), "task 2, which SIGKILLed itself");
      expect(states.get(2)).toMatchObject({ kind: "signal", signal: 9 });
    });

    it("each task sees its number (task 3 exits with status 3)", { timeout }, async () => {
      const states = await run.mainStates();
      expect(states.get(3)).toMatchObject({
        state: "finished",
        kind: "exit",
        exitCode: 3,
        signal: null,
      });
    });

    it("outputLines (when implemented) returns this job's marked lines and no others", {
      timeout,
    }, async () => {
      if (!run.scheduler.outputLines) return;
      await run.mainStates();
      const job = await run.main();
      const lines = await run.scheduler.outputLines(job, marker);
      expect([...lines].sort()).toEqual([1, 2, 3].map((task) => `${marker} task=${task}`));
      expect(await run.scheduler.outputLines(job, `${marker}-never-printed`)).toEqual([]);
    });

    it("cancel stops a running task; cancelling again, or a finished job, is harmless", {
      timeout,
    }, async () => {
      const { scheduler } = run;
      // Named after the main job, so that outputLines of either must tell them apart.
      const job = await run.submit({
        ...run.spec(longProgram(marker), 1),
        name: `${run.mainSpec.name}_long`,
      });
      await run.waitUntilPrinted(job, `${marker} long`);
      await scheduler.cancel(job);
      const states = await run.waitFor(job, cancelledOrEnded);
      if (states.get(1)?.state === "finished") expectFailed(states.get(1), "the cancelled task");
      await expect(scheduler.cancel(job)).resolves.toBeUndefined();
      await run.mainStates();
      await expect(scheduler.cancel(await run.main())).resolves.toBeUndefined();
      if (!scheduler.outputLines) return;
      expect(await scheduler.outputLines(await run.main(), marker)).not.toContain(`${marker} long`);
    });

    it("cancelTasks (when implemented) cancels the tasks named and no other; a number outside the job cancels nothing", {
      timeout,
    }, async () => {
      const { scheduler } = run;
      if (!scheduler.cancelTasks) return;
      const job = await run.submit(run.spec(longProgram(marker), 3, "_some"));
      // All three running, so that each cancelled task ends as a running task does.
      await run.waitFor(job, (states) => [...states.values()].every((t) => t.state === "running"));
      for (const bad of [[1, 4], [0], [2.5]]) {
        await expect(scheduler.cancelTasks(job, bad)).rejects.toMatchObject({
          code: "INVALID_INPUT",
        });
      }
      await scheduler.cancelTasks(job, [3, 2]);
      const states = await run.waitFor(job, (now) =>
        [2, 3].every((task) => ["finished", "unknown"].includes(now.get(task)?.state ?? "")),
      );
      expect(states.get(1)?.state, "the task not named").toBe("running");
      for (const task of [2, 3]) {
        if (states.get(task)?.state === "finished") expectFailed(states.get(task), `task ${task}`);
      }
      await expect(scheduler.cancelTasks(job, [2])).resolves.toBeUndefined();
      await scheduler.cancel(job);
    });
  });
}

/** The tests of the optional methods that run no job, and of close. */
function describeCapabilities(run: ContractRun, factory: SchedulerFactory): void {
  const { timeout, jobOptions } = run;
  describe("options and capabilities", () => {
    it("memoryLimitBytes (when implemented) is undefined without a memory request", () => {
      const limit = run.scheduler.memoryLimitBytes?.bind(run.scheduler);
      if (!limit) return;
      expect(limit([])).toBeUndefined();
      expect(limit(jobOptions)).toBeUndefined();
      const request = run.options.memoryRequest;
      if (request) expect(limit(request.options)).toBe(request.bytes);
    });

    it("checkOptions (when implemented) refuses newline and ';' injections, and submit too", {
      timeout,
    }, async () => {
      const check = run.scheduler.checkOptions?.bind(run.scheduler);
      if (!check) return;
      expect(() => check([])).not.toThrow();
      expect(() => check(jobOptions)).not.toThrow();
      for (const injected of ["-x 1\n; touch injected", "-x 1\r; touch injected", "-x 1\n#"]) {
        const error = thrown(() => check([...jobOptions, injected]));
        expect(SheepdogError.isInstance(error), String(error)).toBe(true);
        expect((error as SheepdogError).code).toBe("CONFIG_INVALID");
        expect((error as SheepdogError).message).toMatch(/^\[sheepdog\] \[[a-z0-9-]+\] .*-x 1/s);
        const job = { ...run.spec("print(1)\n", 1), options: [...jobOptions, injected] };
        const refused = await run.scheduler.submit(job).catch((e: unknown) => e);
        expect(SheepdogError.isInstance(refused), "submit refuses it too").toBe(true);
      }
    });

    it("submit rejects a job of no tasks with INVALID_INPUT", { timeout }, async () => {
      for (const tasks of [0, -1, 1.5]) {
        const error = await run.scheduler
          .submit(run.spec("print(1)\n", tasks))
          .catch((e: unknown) => e);
        expect(SheepdogError.isInstance(error), String(error)).toBe(true);
        expect((error as SheepdogError).code).toBe("INVALID_INPUT");
      }
    });

    it("slots (when implemented) is a positive whole number", { timeout }, async () => {
      if (!run.scheduler.slots) return;
      const slots = await run.scheduler.slots();
      expect(Number.isSafeInteger(slots) && slots > 0, `slots ${slots}`).toBe(true);
    });

    it("prepare (when implemented) resolves, twice, and also once closed", {
      timeout,
    }, async () => {
      const fresh = await factory();
      if (!fresh.prepare) return;
      await expect(fresh.prepare()).resolves.toBeUndefined();
      await expect(fresh.prepare()).resolves.toBeUndefined();
      await fresh.close?.();
      await expect(fresh.prepare()).resolves.toBeUndefined();
    });

    it("after close, submit rejects with CLOSED; closing twice is harmless", {
      timeout,
    }, async () => {
      const closing = await factory();
      if (!closing.close) return;
      await closing.close();
      await closing.close();
      const error = await closing.submit(run.spec("print(1)\n", 1)).catch((e: unknown) => e);
      expect(SheepdogError.isInstance(error), String(error)).toBe(true);
      expect((error as SheepdogError).code).toBe("CLOSED");
    });
  });
}

/**
 * The conformance suite for {@link Scheduler}: it submits a few small real jobs (Python
 * programs, run with `shell`) and checks the `JobRef` that `submit` returns (scheduler name,
 * tasks, parts covering 1..tasks, JSON), that `status` has an entry for every task and
 * reaches `finished` with exit code 0 for a task that succeeds and a failure for a task that
 * SIGKILLs itself or exits with 3, that each task sees its number (`SHEEPDOG_TASK_ID`,
 * `SGE_TASK_ID`, `SLURM_ARRAY_TASK_ID` or `PBS_ARRAY_INDEX`), that `cancel` stops a running
 * task and is harmless on a finished job, that `submit` rejects a job of no tasks with
 * `INVALID_INPUT`, and with `CLOSED` after `close`. Optional methods are checked when the scheduler has them: `outputLines` (this
 * job's marked lines, no others), `memoryLimitBytes` (`undefined` without a memory request),
 * `checkOptions` (an option carrying a newline or `;` injection is refused with
 * `CONFIG_INVALID`), `slots` (a positive whole number), `prepare` (resolves, never rejects),
 * `cancelTasks` (the tasks named end, the others run on; a number outside the job is refused).
 *
 * It runs two jobs at once (three tasks, then one long task that it cancels), so it takes a
 * few seconds where a task starts within a second; `status` must tell how a task ended
 * within `timeout` (a GridEngine cluster needs its accounting flushed in time).
 *
 * @example
 * ```ts
 * import { describeSchedulerContract } from "@sheepdog/contracts/testing";
 * describeSchedulerContract("my-scheduler", () => myScheduler(), { directory: ".sd-contract" });
 * ```
 */
export function describeSchedulerContract(
  name: string,
  factory: SchedulerFactory,
  options: SchedulerContractOptions,
): void {
  const run = new ContractRun(options);
  describe(`Scheduler contract: ${name}`, () => {
    beforeAll(async () => {
      run.scheduler = await factory();
    }, run.timeout);

    afterAll(async () => {
      const { scheduler } = run;
      if (!scheduler) return;
      await Promise.all(run.submitted.map((job) => scheduler.cancel(job).catch(() => undefined)));
      await scheduler.close?.();
    }, run.timeout);

    describeJobs(run);
    describeCapabilities(run, factory);
  });
}
