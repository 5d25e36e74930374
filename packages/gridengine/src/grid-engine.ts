import type {
  ExecResult,
  JobRef,
  JobSpec,
  Remote,
  Scheduler,
  SheepdogErrorCode,
  TaskState,
} from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import { shellQuote } from "./internal/directives.js";
import { describeEnd, parseQacct, type QacctRecord } from "./internal/qacct.js";
import {
  hostOf,
  parseClusterSlots,
  parseErrorReasons,
  parseQstatXml,
  phaseOf,
} from "./internal/qstat.js";
import { parseMaxArrayTasks, parseQsubJobId, qdelFailures, splitTasks } from "./internal/qsub.js";
import { forEachTask } from "./internal/task-ranges.js";
import { checkSpec, jobScript } from "./job-script.js";

const source = "gridengine";

/** SGE's own default for `max_aj_tasks`, assumed when `qconf -sconf` cannot be read. */
const defaultMaxArrayTasks = 75_000;

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

/** One of the user's tasks as `qstat` shows it. */
interface Seen {
  state: TaskState;
  error?: boolean;
}

function positive(name: string, value: number | undefined, fallback: number): number {
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

function outputOf(result: ExecResult): string {
  return `${result.stderr}\n${result.stdout}`
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .join(" ");
}

function checkRef(job: JobRef): void {
  const valid =
    typeof job === "object" &&
    job !== null &&
    job.scheduler === "gridengine" &&
    Number.isSafeInteger(job.tasks) &&
    Array.isArray(job.parts) &&
    job.parts.length > 0 &&
    job.parts.every(
      (part) =>
        typeof part?.jobId === "string" &&
        /^\d+$/.test(part.jobId) &&
        Number.isSafeInteger(part.firstTask) &&
        Number.isSafeInteger(part.lastTask) &&
        part.firstTask >= 1 &&
        part.lastTask >= part.firstTask &&
        part.lastTask <= job.tasks,
    );
  if (!valid) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `${JSON.stringify(job)?.slice(0, 200)} is not a job this GridEngine scheduler submitted (scheduler "gridengine", numeric job ids, task ranges within 1..tasks).`,
    );
  }
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
export function gridEngine(
  remote: Remote,
  options: GridEngineOptions = {},
): Scheduler & AsyncDisposable {
  if (typeof remote !== "object" || remote === null || typeof remote.exec !== "function") {
    throw new SheepdogError("CONFIG_INVALID", source, "gridEngine(remote) needs a Remote.");
  }
  const qacctWaitMs = positive("qacctWaitMs", options.qacctWaitMs, 120_000);
  const pollTimeoutMs = positive("pollCommandTimeoutMs", options.pollCommandTimeoutMs, 60_000);
  const submitTimeoutMs = positive(
    "submitCommandTimeoutMs",
    options.submitCommandTimeoutMs,
    120_000,
  );
  if (
    options.maxArrayTasks !== undefined &&
    !(Number.isSafeInteger(options.maxArrayTasks) && options.maxArrayTasks >= 1)
  ) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `maxArrayTasks must be a whole number of at least 1, not ${JSON.stringify(options.maxArrayTasks)}.`,
    );
  }
  if (options.setup !== undefined && typeof options.setup !== "string") {
    throw new SheepdogError("CONFIG_INVALID", source, "setup must be a string of shell commands.");
  }
  const setup = options.setup?.trim() ? `${options.setup.trim()}\n` : "";

  let closed = false;
  let maxArrayTasks: Promise<number> | undefined;
  /** `jobId.task` -> how the task ended, once qacct said so. Final, so kept. */
  const ended = new Map<string, TaskState>();
  /** `jobId.task` -> when status() first found the task gone from qstat. */
  const missingSince = new Map<string, number>();
  /** False once qacct turned out not to be installed. */
  let qacctInstalled = true;

  function ensureOpen(): void {
    if (closed) {
      throw new SheepdogError(
        "CLOSED",
        source,
        "This GridEngine scheduler is closed. Create a new one with gridEngine(remote).",
      );
    }
  }

  async function run(
    command: string,
    timeoutMs: number,
    code: SheepdogErrorCode,
    what: string,
  ): Promise<ExecResult> {
    try {
      return await remote.exec(`${setup}${command}`, { timeoutMs });
    } catch (error) {
      throw SheepdogError.from(error, code, source, `Could not run ${what} on ${remote.name}`);
    }
  }

  function notFound(result: ExecResult, command: string, code: SheepdogErrorCode): SheepdogError {
    return new SheepdogError(
      code,
      source,
      `${command} was not found on ${remote.name} (${outputOf(result) || "exit code 127"}). Make GridEngine's commands available to non-interactive logins there, or pass the "setup" option (e.g. ". $SGE_ROOT/default/common/settings.sh").`,
    );
  }

  function readMaxArrayTasks(): Promise<number> {
    if (options.maxArrayTasks !== undefined) return Promise.resolve(options.maxArrayTasks);
    maxArrayTasks ??= run("qconf -sconf", pollTimeoutMs, "SUBMIT_FAILED", "qconf -sconf").then(
      (result) =>
        (result.code === 0 ? parseMaxArrayTasks(result.stdout) : undefined) ?? defaultMaxArrayTasks,
    );
    // A failure (connection lost) is not cached: the next submit asks again.
    maxArrayTasks.catch(() => {
      maxArrayTasks = undefined;
    });
    return maxArrayTasks;
  }

  async function qdel(jobIds: string[], code: SheepdogErrorCode): Promise<void> {
    const result = await run(`qdel ${jobIds.join(" ")}`, submitTimeoutMs, code, "qdel");
    if (result.code === 127) throw notFound(result, "qdel", code);
    if (result.code === 0) return;
    const failures = qdelFailures(`${result.stdout}\n${result.stderr}`);
    if (failures.length > 0) {
      throw new SheepdogError(
        code,
        source,
        `qdel ${jobIds.join(" ")} failed (exit code ${result.code}): ${failures.join(" ")}`,
      );
    }
  }

  async function submitPart(
    spec: JobSpec,
    directory: string,
    file: string,
    range: { firstTask: number; lastTask: number },
  ): Promise<string> {
    try {
      await remote.upload(`${directory}/${file}`, jobScript(spec, range), 0o600);
    } catch (error) {
      throw SheepdogError.from(
        error,
        "SUBMIT_FAILED",
        source,
        `Could not upload the job script ${directory}/${file} to ${remote.name}`,
      );
    }
    const result = await run(
      `cd -- ${shellQuote(directory)} && qsub -terse ${shellQuote(file)}`,
      submitTimeoutMs,
      "SUBMIT_FAILED",
      "qsub",
    );
    if (result.code === 127) throw notFound(result, "qsub", "SUBMIT_FAILED");
    if (result.code !== 0) {
      throw new SheepdogError(
        "SUBMIT_FAILED",
        source,
        `qsub refused job "${spec.name}" (exit code ${result.code ?? result.signal}): ${outputOf(result) || "no message"}`,
      );
    }
    const jobId = parseQsubJobId(result.stdout);
    if (!jobId) {
      throw new SheepdogError(
        "SUBMIT_FAILED",
        source,
        `qsub accepted job "${spec.name}" but printed no job number Sheepdog can read: ${JSON.stringify(outputOf(result))}. Check qstat for a job of that name.`,
      );
    }
    return jobId;
  }

  /** `qstat -j <job>`'s error reasons, for tasks in an error state. */
  async function errorReasons(jobId: string): Promise<Map<number, string>> {
    try {
      const result = await run(`qstat -j ${jobId}`, pollTimeoutMs, "SCHEDULER_FAILED", "qstat -j");
      return result.code === 0 ? parseErrorReasons(result.stdout) : new Map();
    } catch {
      return new Map();
    }
  }

  /**
   * qacct's records of tasks `first .. last` of one job (`-t` keeps the answer small while a
   * large array runs), or none when accounting has nothing (yet) or is absent.
   */
  async function accounting(jobId: string, first: number, last: number): Promise<QacctRecord[]> {
    if (!qacctInstalled) return [];
    const result = await run(
      `qacct -j ${jobId} -t ${first}-${last}`,
      pollTimeoutMs,
      "SCHEDULER_FAILED",
      "qacct",
    );
    if (result.code === 127) {
      qacctInstalled = false;
      return [];
    }
    // Exit code 1 with "error: job id N not found" until the record is flushed, or when the
    // cluster keeps no accounting file: either way, no record.
    return result.code === 0 ? parseQacct(result.stdout) : [];
  }

  async function close(): Promise<void> {
    closed = true;
    ended.clear();
    missingSince.clear();
  }

  return {
    name: source,

    async submit(spec) {
      ensureOpen();
      try {
        checkSpec(spec);
      } catch (error) {
        throw SheepdogError.from(error, "INVALID_INPUT", source, "Invalid job spec");
      }
      const max = await readMaxArrayTasks();
      const directory = spec.directory.replace(/(.)\/+$/, "$1");
      try {
        await remote.mkdir(directory, 0o700);
      } catch (error) {
        throw SheepdogError.from(
          error,
          "SUBMIT_FAILED",
          source,
          `Could not create the job directory ${directory} on ${remote.name}`,
        );
      }
      const ranges = splitTasks(spec.tasks, max);
      const parts: JobRef["parts"] = [];
      try {
        for (const [index, range] of ranges.entries()) {
          const file = ranges.length === 1 ? `${spec.name}.py` : `${spec.name}.${index + 1}.py`;
          const jobId = await submitPart(spec, directory, file, range);
          parts.push({ jobId, ...range });
        }
      } catch (error) {
        if (parts.length > 0) {
          // Withdraw the parts already queued, so a failed submit leaves nothing running.
          await qdel(
            parts.map((part) => part.jobId),
            "SUBMIT_FAILED",
          ).catch(() => undefined);
        }
        throw error;
      }
      return {
        scheduler: source,
        id: parts.map((part) => part.jobId).join(","),
        tasks: spec.tasks,
        parts,
        directory: spec.directory,
        name: spec.name,
      };
    },

    async status(job) {
      ensureOpen();
      checkRef(job);
      const result = await run(
        "qstat -xml -u '$user' -s prs",
        pollTimeoutMs,
        "SCHEDULER_FAILED",
        "qstat",
      );
      if (result.code === 127) throw notFound(result, "qstat", "SCHEDULER_FAILED");
      if (result.code !== 0) {
        throw new SheepdogError(
          "SCHEDULER_FAILED",
          source,
          `qstat failed (exit code ${result.code ?? result.signal}): ${outputOf(result) || "no message"}. Is the GridEngine qmaster up?`,
        );
      }
      let entries: ReturnType<typeof parseQstatXml>;
      try {
        entries = parseQstatXml(result.stdout);
      } catch (error) {
        throw SheepdogError.from(error, "SCHEDULER_FAILED", source, "Cannot read qstat's answer");
      }

      const seen = new Map<number, Seen>();
      const byJob = new Map(job.parts.map((part) => [part.jobId, part]));
      const inError = new Set<string>();
      for (const entry of entries) {
        const part = byJob.get(entry.jobId);
        if (!part) continue;
        const phase = phaseOf(entry.state);
        const host = hostOf(entry.queue);
        const state: TaskState =
          phase === "running"
            ? { state: "running", ...(host ? { host } : {}) }
            : { state: "queued" };
        if (phase === "error") inError.add(entry.jobId);
        const mark = (task: number) => seen.set(task, { state, error: phase === "error" });
        if (entry.tasks) forEachTask(entry.tasks, part.firstTask, part.lastTask, mark);
        else for (let task = part.firstTask; task <= part.lastTask; task++) mark(task);
      }

      const states = new Map<number, TaskState>();
      const now = Date.now();
      await Promise.all(
        job.parts.map(async (part) => {
          const reasons = inError.has(part.jobId) ? await errorReasons(part.jobId) : undefined;
          const ask: number[] = [];
          for (let task = part.firstTask; task <= part.lastTask; task++) {
            const key = `${part.jobId}.${task}`;
            const inQstat = seen.get(task);
            if (inQstat) {
              missingSince.delete(key);
              const error = inQstat.error
                ? (reasons?.get(task) ??
                  reasons?.values().next().value ??
                  "in an error state (Eqw)")
                : undefined;
              states.set(task, error ? { state: "queued", error } : inQstat.state);
              continue;
            }
            const end = ended.get(key);
            if (end) {
              states.set(task, end);
              continue;
            }
            const since = missingSince.get(key) ?? now;
            missingSince.set(key, since);
            states.set(task, { state: "unknown" });
            if (now - since <= qacctWaitMs) ask.push(task);
          }
          if (ask.length === 0) return;
          const last = new Map<number, QacctRecord>();
          const first = ask[0] ?? part.firstTask;
          const lastAsked = ask[ask.length - 1] ?? part.lastTask;
          for (const record of await accounting(part.jobId, first, lastAsked)) {
            // Job numbers wrap around; the unique job name tells this job's records apart.
            if (record.jobName !== null && record.jobName !== job.name) continue;
            last.set(record.taskId ?? part.firstTask, record);
          }
          for (const task of ask) {
            const record = last.get(task);
            const end = record && describeEnd(record);
            if (!end) continue;
            const state: TaskState = { state: "finished", ...end };
            ended.set(`${part.jobId}.${task}`, state);
            missingSince.delete(`${part.jobId}.${task}`);
            states.set(task, state);
          }
        }),
      );
      return new Map([...states].sort((a, b) => a[0] - b[0]));
    },

    async slots() {
      ensureOpen();
      const result = await run("qstat -g c", pollTimeoutMs, "SCHEDULER_FAILED", "qstat -g c");
      if (result.code === 127) throw notFound(result, "qstat", "SCHEDULER_FAILED");
      const slots = result.code === 0 ? parseClusterSlots(result.stdout) : undefined;
      if (slots === undefined) {
        throw new SheepdogError(
          "SCHEDULER_FAILED",
          source,
          `qstat -g c on ${remote.name} gave no queue slots (exit code ${result.code ?? result.signal}): ${outputOf(result) || "no output"}`,
        );
      }
      return slots;
    },

    async cancel(job) {
      ensureOpen();
      checkRef(job);
      await qdel(
        job.parts.map((part) => part.jobId),
        "SCHEDULER_FAILED",
      );
    },

    close,
    [Symbol.asyncDispose]: close,
  };
}
