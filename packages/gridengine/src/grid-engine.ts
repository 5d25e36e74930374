import type { JobRef, Remote, Scheduler } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type { CommandSettings } from "./internal/commands.js";
import { Commands, outputOf } from "./internal/commands.js";
import { checkOptions } from "./internal/directives.js";
import { checkRef, qdelTaskWords } from "./internal/job-ref.js";
import { memGrabBytes } from "./internal/mem-grab.js";
import { outputLines } from "./internal/output-lines.js";
import { parseClusterSlots } from "./internal/qstat.js";
import { source } from "./internal/source.js";
import { TaskStatus } from "./internal/status.js";
import { maxArrayTasksReader, needsArrayLimit, qdel, submitJob } from "./internal/submit.js";

/** Options of {@link gridEngine}. */
export interface GridEngineOptions {
  /**
   * The most tasks one array job may have. Larger jobs are submitted as several array jobs
   * (parts) under one `JobRef`, each part keeping the global task numbers (`-t 1001-2000`).
   * @default the cluster's `max_aj_tasks` (`qconf -sconf`, read once), or 75000 when unreadable
   */
  maxArrayTasks?: number;
  /**
   * How long after a task leaves `qstat` `status()` keeps asking `qacct` how it ended. The
   * accounting file is flushed every 15 s by default, and some clusters keep none; past this
   * window the task stays `unknown` without further `qacct` calls.
   * @default 120000
   */
  qacctWaitMs?: number;
  /** Deadline of each `qstat`, `qacct` and `qconf` command. @default 60000 */
  pollCommandTimeoutMs?: number;
  /** Deadline of each `qsub` and `qdel` command. @default 120000 */
  submitCommandTimeoutMs?: number;
  /**
   * Shell commands run before every GridEngine command, for head nodes whose non-interactive
   * logins lack GridEngine's environment: `". /opt/sge/default/common/settings.sh"`.
   */
  setup?: string;
}

/** The GridEngine scheduler: a `Scheduler` with every optional method, and `await using`. */
export interface GridEngineScheduler extends Scheduler, AsyncDisposable {
  readonly optionsSetting: "geOpts";
  slots(): Promise<number>;
  cancelTasks(job: JobRef, tasks: readonly number[]): Promise<void>;
  checkOptions(options: readonly string[]): void;
  memoryLimitBytes(options: readonly string[]): number | undefined;
  outputLines(job: JobRef, marker: string): Promise<string[]>;
  close(): Promise<void>;
}

function atLeastZero(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `${name} must be a number of at least 0, not ${JSON.stringify(value)}.`,
    );
  }
  return value;
}

/** Checks the options of {@link gridEngine} and fills in the defaults. */
function resolveOptions(options: GridEngineOptions): CommandSettings & { qacctWaitMs: number } {
  const { maxArrayTasks, setup } = options;
  if (maxArrayTasks !== undefined && !(Number.isSafeInteger(maxArrayTasks) && maxArrayTasks >= 1)) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `maxArrayTasks must be a whole number of at least 1, not ${JSON.stringify(maxArrayTasks)}.`,
    );
  }
  if (setup !== undefined && typeof setup !== "string") {
    throw new SheepdogError("CONFIG_INVALID", source, "setup must be a string of shell commands.");
  }
  return {
    qacctWaitMs: atLeastZero("qacctWaitMs", options.qacctWaitMs, 120_000),
    pollTimeoutMs: atLeastZero("pollCommandTimeoutMs", options.pollCommandTimeoutMs, 60_000),
    submitTimeoutMs: atLeastZero("submitCommandTimeoutMs", options.submitCommandTimeoutMs, 120_000),
    setup: setup?.trim() ? `${setup.trim()}\n` : "",
  };
}

/** `qstat -g c`'s total of queue slots. */
async function clusterSlots(commands: Commands): Promise<number> {
  const result = await commands.poll("qstat -g c", "qstat -g c");
  if (result.code === 127) throw commands.notFound(result, "qstat", "SCHEDULER_FAILED");
  const slots = result.code === 0 ? parseClusterSlots(result.stdout) : undefined;
  if (slots === undefined) {
    throw new SheepdogError(
      "SCHEDULER_FAILED",
      source,
      `qstat -g c on ${commands.remote.name} gave no queue slots (exit code ${result.code ?? result.signal}): ${outputOf(result) || "no output"}`,
    );
  }
  return slots;
}

/**
 * The GridEngine `Scheduler` (Son of Grid Engine, Open Grid Scheduler, Univa/Altair Grid
 * Engine) over any `Remote`: it writes a job script, submits it with `qsub`, follows it
 * with `qstat -xml` and `qacct`, and cancels it with `qdel`.
 *
 * - `submit` uploads the script (mode 0600) into the spec's directory and runs `qsub`; an
 *   array larger than `max_aj_tasks` becomes several array jobs under one `JobRef`.
 * - `status` asks `qstat` once for every part; a task that has left `qstat` is `finished`
 *   only once `qacct` has its record (exit status, signal, `failed`, maxvmem, and a reason
 *   such as "exceeded its run-time limit (h_rt=2)"); until then it is `unknown`.
 * - `cancel` runs `qdel` on every part; jobs that already ended are not an error.
 *   `cancelTasks` runs one `qdel` on just the tasks named (`qdel 60.5-6 60.8 61.10`).
 * - `checkOptions` refuses what `submit` would (see `jobScript`), `memoryLimitBytes` reads
 *   `-l mem_grab=<size>`, `outputLines` greps the job's `<name>.o*` files in its directory.
 *
 * @example
 * ```ts
 * import { connect } from "@sheepdog/deploy-ssh";
 * import { gridEngine } from "@sheepdog/gridengine";
 *
 * const remote = await connect({ host: "fear" });
 * const scheduler = gridEngine(remote);
 * const job = await scheduler.submit({ name: "hello_1", tasks: 3, shell: "/usr/bin/python3",
 *   options: ["-l h_rt=0:1:0"], directory: ".sheepdog", program: "print('hello')\n" });
 * console.log(await scheduler.status(job));
 * ```
 */
export function gridEngine(remote: Remote, options: GridEngineOptions = {}): GridEngineScheduler {
  if (typeof remote !== "object" || remote === null || typeof remote.exec !== "function") {
    throw new SheepdogError("CONFIG_INVALID", source, "gridEngine(remote) needs a Remote.");
  }
  const { qacctWaitMs, ...settings } = resolveOptions(options);
  const commands = new Commands(remote, settings);
  const tasks = new TaskStatus(commands, qacctWaitMs);
  const { maxArrayTasks } = options;
  const readMaxArrayTasks =
    maxArrayTasks === undefined ? maxArrayTasksReader(commands) : async () => maxArrayTasks;
  let closed = false;

  function ensureOpen(): void {
    if (closed) {
      throw new SheepdogError(
        "CLOSED",
        source,
        "This GridEngine scheduler is closed. Create a new one with gridEngine(remote).",
      );
    }
  }

  async function close(): Promise<void> {
    closed = true;
    tasks.clear();
  }

  return {
    name: source,
    optionsSetting: "geOpts",
    async submit(spec) {
      ensureOpen();
      return submitJob(commands, spec, readMaxArrayTasks);
    },
    async prepare(job) {
      if (closed || (job !== undefined && !needsArrayLimit(job.mostTasks))) return;
      await readMaxArrayTasks().catch(() => undefined);
    },
    async status(job) {
      ensureOpen();
      checkRef(job);
      return tasks.status(job);
    },
    async slots() {
      ensureOpen();
      return clusterSlots(commands);
    },
    async cancel(job) {
      ensureOpen();
      checkRef(job);
      await qdel(
        commands,
        job.parts.map((part) => part.jobId),
        "SCHEDULER_FAILED",
      );
    },
    async cancelTasks(job, taskNumbers) {
      ensureOpen();
      checkRef(job);
      const targets = qdelTaskWords(job, taskNumbers);
      if (targets.length > 0) await qdel(commands, targets, "SCHEDULER_FAILED");
    },
    checkOptions(given) {
      checkOptions(given);
    },
    memoryLimitBytes: (given) => memGrabBytes(checkOptions(given)),
    async outputLines(job, marker) {
      ensureOpen();
      return outputLines(commands, job, marker);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
