import type { JobRef, Remote, Scheduler } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type { CommandSettings } from "./internal/commands.js";
import { Commands, outputOf } from "./internal/commands.js";
import { checkOptions, memBytes } from "./internal/directives.js";
import { checkRef, scancelTaskWords } from "./internal/job-ref.js";
import { outputLines } from "./internal/output-lines.js";
import { source } from "./internal/source.js";
import { TaskStatus } from "./internal/status.js";
import { configReader, scancel, submitJob } from "./internal/submit.js";

/** Options of {@link slurm}. */
export interface SlurmOptions {
  /**
   * The most tasks one array job may have. Larger jobs are submitted as several array jobs
   * (parts) under one `JobRef`. @default the cluster's `MaxArraySize - 1` (`scontrol show
   * config`, read once), or 1000 when unreadable
   */
  maxArrayTasks?: number;
  /**
   * How long after a task leaves `squeue` `status()` keeps asking `sacct` and `scontrol` how it
   * ended; past this window the task stays `unknown`. @default 120000
   */
  endWaitMs?: number;
  /** Deadline of each `squeue`, `sacct`, `scontrol` and `sinfo` command. @default 60000 */
  pollCommandTimeoutMs?: number;
  /** Deadline of each `sbatch` and `scancel` command. @default 120000 */
  submitCommandTimeoutMs?: number;
  /**
   * Shell commands run before every Slurm command, for head nodes whose non-interactive logins
   * lack Slurm's environment: `"module load slurm"`.
   */
  setup?: string;
}

/** The Slurm scheduler: a `Scheduler` with every optional method, and `await using`. */
export interface SlurmScheduler extends Scheduler, AsyncDisposable {
  readonly optionsSetting: "slurmOpts";
  slots(): Promise<number>;
  cancelTasks(job: JobRef, tasks: readonly number[]): Promise<void>;
  checkOptions(options: readonly string[]): void;
  memoryLimitBytes(options: readonly string[]): number | undefined;
  outputLines(job: JobRef, marker: string): Promise<string[]>;
  close(): Promise<void>;
}

function atLeast(name: string, value: number | undefined, min: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `${name} must be a number of at least ${min}, not ${JSON.stringify(value)}.`,
    );
  }
  return value;
}

function resolveOptions(options: SlurmOptions): CommandSettings & { endWaitMs: number } {
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
    endWaitMs: atLeast("endWaitMs", options.endWaitMs, 0, 120_000),
    pollTimeoutMs: atLeast("pollCommandTimeoutMs", options.pollCommandTimeoutMs, 0, 60_000),
    submitTimeoutMs: atLeast("submitCommandTimeoutMs", options.submitCommandTimeoutMs, 0, 120_000),
    setup: setup?.trim() ? `${setup.trim()}\n` : "",
  };
}

/** The CPUs of the cluster's nodes, from `sinfo -h -o %C` (allocated/idle/other/total). */
async function clusterCpus(commands: Commands): Promise<number> {
  const result = await commands.poll("sinfo -h -o %C", "sinfo");
  if (result.code === 127) throw commands.notFound(result, "sinfo", "SCHEDULER_FAILED");
  const total = result.stdout
    .split("\n")
    .map((line) => /^\d+\/\d+\/\d+\/(\d+)$/.exec(line.trim())?.[1])
    .filter((value) => value !== undefined)
    .reduce((sum, value) => sum + Number(value), 0);
  if (result.code !== 0 || total < 1) {
    throw new SheepdogError(
      "SCHEDULER_FAILED",
      source,
      `sinfo on ${commands.remote.name} gave no CPUs (exit code ${result.code ?? result.signal}): ${outputOf(result) || "no output"}`,
    );
  }
  return total;
}

/**
 * The Slurm `Scheduler` over any `Remote`: it writes a batch script, submits it with
 * `sbatch --parsable` (one array job per request, split over `MaxArraySize`), follows it with
 * `squeue`, then `sacct` (where accounting is configured) and `scontrol show job`, and cancels
 * it with `scancel`.
 *
 * - Tasks that die without reporting are `finished` with Slurm's state (`TIMEOUT`,
 *   `OUT_OF_MEMORY`, `CANCELLED by <uid>`, `NODE_FAIL`, ...), exit code, signal, MaxRSS, and a
 *   kind every scheduler shares (`time-limit`, `out-of-memory`, ...).
 * - `cancelTasks` runs one `scancel` on just the tasks named, a word per part
 *   (`scancel '2253_[5-6,8]' '2254_[1-3]'`, in each part's own array indices).
 * - `checkOptions` refuses what `submit` would (see `jobScript`) and GridEngine's options,
 *   naming Slurm's; `memoryLimitBytes` reads `--mem=<size>`; `outputLines` greps the job's
 *   `<name>.o<job>.<index>` files; `slots` is the CPUs `sinfo` counts.
 *
 * @example
 * ```ts
 * import { connect } from "@sheepdog/deploy-ssh";
 * import { slurm } from "@sheepdog/slurm";
 *
 * const remote = await connect({ host: "login.cluster" });
 * const scheduler = slurm(remote);
 * const job = await scheduler.submit({ name: "hello_1", tasks: 3, shell: "/usr/bin/python3",
 *   options: ["--time=0:10:00"], directory: ".sheepdog", program: "print('hello')\n" });
 * console.log(await scheduler.status(job));
 * ```
 */
export function slurm(remote: Remote, options: SlurmOptions = {}): SlurmScheduler {
  if (typeof remote !== "object" || remote === null || typeof remote.exec !== "function") {
    throw new SheepdogError("CONFIG_INVALID", source, "slurm(remote) needs a Remote.");
  }
  const { endWaitMs, ...settings } = resolveOptions(options);
  const commands = new Commands(remote, settings);
  const readConfig = configReader(commands);
  const config =
    options.maxArrayTasks === undefined
      ? readConfig
      : async () => ({ ...(await readConfig()), maxArrayTasks: options.maxArrayTasks as number });
  const tasks = new TaskStatus(commands, async () => (await readConfig()).accounting, endWaitMs);
  let closed = false;

  function ensureOpen(): void {
    if (closed) {
      throw new SheepdogError(
        "CLOSED",
        source,
        "This Slurm scheduler is closed. Create a new one with slurm(remote).",
      );
    }
  }

  async function close(): Promise<void> {
    closed = true;
    tasks.clear();
  }

  return {
    name: source,
    optionsSetting: "slurmOpts",
    async submit(spec) {
      ensureOpen();
      return submitJob(commands, spec, config);
    },
    async prepare() {
      if (!closed) await config().catch(() => undefined);
    },
    async status(job) {
      ensureOpen();
      checkRef(job);
      return tasks.status(job);
    },
    async slots() {
      ensureOpen();
      return clusterCpus(commands);
    },
    async cancel(job) {
      ensureOpen();
      checkRef(job);
      await scancel(
        commands,
        job.parts.map((part) => part.jobId),
        "SCHEDULER_FAILED",
      );
    },
    async cancelTasks(job, taskNumbers) {
      ensureOpen();
      checkRef(job);
      const targets = scancelTaskWords(job, taskNumbers);
      if (targets.length > 0) await scancel(commands, targets, "SCHEDULER_FAILED");
    },
    checkOptions(given) {
      checkOptions(given);
    },
    memoryLimitBytes: (given) => memBytes(checkOptions(given)),
    async outputLines(job, marker) {
      ensureOpen();
      return outputLines(commands, job, marker);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
