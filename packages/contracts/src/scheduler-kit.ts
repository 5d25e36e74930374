import type { SheepdogErrorCode } from "./errors.js";
import { SheepdogError } from "./errors.js";
import type { ExecResult, Remote } from "./remote.js";
import type { JobRef, JobSpec } from "./scheduler.js";
import { shellQuote } from "./text.js";

/*
 * What the schedulers that run their commands on a head node share: running those commands,
 * checking a JobRef that came from a store, and submitting an array as parts.
 */

/** How a scheduler's commands are run on the head node. */
export interface CommandSettings {
  /** Shell commands run before every command of the scheduler ("" for none). */
  setup: string;
  /** Deadline of each command that asks for state. */
  pollTimeoutMs: number;
  /** Deadline of each command that submits or cancels. */
  submitTimeoutMs: number;
}

/** Which scheduler runs commands, for its errors. */
export interface SchedulerIdentity {
  /** The package's name in its errors (`"slurm"`), and the JobRef's `scheduler`. */
  source: string;
  /** Its name for people (`"Slurm"`). */
  title: string;
  /** A `setup` that makes its commands available, for the error when one is missing. */
  setupExample: string;
}

/** A command's stderr and stdout as one line, for messages. */
export function outputOf(result: ExecResult): string {
  return `${result.stderr}\n${result.stdout}`
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .join(" ");
}

/** Runs a scheduler's commands over a `Remote`, turning every failure into a `SheepdogError`. */
export class SchedulerCommands {
  constructor(
    readonly remote: Remote,
    readonly settings: CommandSettings,
    readonly identity: SchedulerIdentity,
  ) {}

  /** Runs `command` after the setup commands; a failure to run it at all rejects with `code`. */
  async run(
    command: string,
    timeoutMs: number,
    code: SheepdogErrorCode,
    what: string,
  ): Promise<ExecResult> {
    try {
      return await this.remote.exec(`${this.settings.setup}${command}`, { timeoutMs });
    } catch (error) {
      throw SheepdogError.from(
        error,
        code,
        this.identity.source,
        `Could not run ${what} on ${this.remote.name}`,
      );
    }
  }

  /** A command that asks for state, rejecting with `SCHEDULER_FAILED`. */
  poll(command: string, what: string): Promise<ExecResult> {
    return this.run(command, this.settings.pollTimeoutMs, "SCHEDULER_FAILED", what);
  }

  /** The error for a command the head node does not have (exit code 127). */
  notFound(result: ExecResult, command: string, code: SheepdogErrorCode): SheepdogError {
    const { source, title, setupExample } = this.identity;
    return new SheepdogError(
      code,
      source,
      `${command} was not found on ${this.remote.name} (${outputOf(result) || "exit code 127"}). Make ${title}'s commands available to non-interactive logins there, or pass the "setup" option (e.g. ${JSON.stringify(setupExample)}).`,
    );
  }

  /**
   * Uploads a job script (mode 0600) into its directory and submits it from there; resolves
   * with its job id. Every failure rejects with `SUBMIT_FAILED` and the scheduler's own words.
   */
  async submitScript(job: ScriptSubmission): Promise<string> {
    const { source } = this.identity;
    const { directory, file, jobName } = job;
    const command = job.submit.split(" ", 1)[0] ?? job.submit;
    try {
      await this.remote.upload(`${directory}/${file}`, job.script, 0o600);
    } catch (error) {
      throw SheepdogError.from(
        error,
        "SUBMIT_FAILED",
        source,
        `Could not upload the job script ${directory}/${file} to ${this.remote.name}`,
      );
    }
    const result = await this.run(
      `cd -- ${shellQuote(directory)} && ${job.submit} ${shellQuote(file)}`,
      this.settings.submitTimeoutMs,
      "SUBMIT_FAILED",
      command,
    );
    if (result.code === 127) throw this.notFound(result, command, "SUBMIT_FAILED");
    if (result.code !== 0) {
      throw new SheepdogError(
        "SUBMIT_FAILED",
        source,
        `${command} refused job "${jobName}" (exit code ${result.code ?? result.signal}): ${outputOf(result) || "no message"}`,
      );
    }
    const jobId = job.parseJobId(result.stdout);
    if (!jobId) {
      throw new SheepdogError(
        "SUBMIT_FAILED",
        source,
        `${command} accepted job "${jobName}" but printed no ${job.idName} Sheepdog can read: ${JSON.stringify(outputOf(result))}. Check ${job.lister} for a job of that name.`,
      );
    }
    return jobId;
  }

  /** Creates a job directory on the head node (mode 0700). */
  async makeDirectory(directory: string): Promise<void> {
    try {
      await this.remote.mkdir(directory, 0o700);
    } catch (error) {
      throw SheepdogError.from(
        error,
        "SUBMIT_FAILED",
        this.identity.source,
        `Could not create the job directory ${directory} on ${this.remote.name}`,
      );
    }
  }
}

/** How {@link SchedulerCommands.submitScript} submits one job script. */
export interface ScriptSubmission {
  /** Where the script goes on the head node, and its file name there. */
  directory: string;
  file: string;
  script: string;
  /** The job's name, for messages. */
  jobName: string;
  /** The submit command and its options, without the file (`"qsub -terse"`). */
  submit: string;
  /** Reads the job id from the submit command's stdout. */
  parseJobId(stdout: string): string | undefined;
  /** What the job id is called (`"job number"`), and the command that lists jobs (`"qstat"`). */
  idName: string;
  lister: string;
}

/** The job names schedulers accept, so that a stored name is safe in a pattern. */
export const jobNamePattern = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

function validPart(part: JobRef["parts"][number] | undefined, tasks: number): boolean {
  return (
    typeof part?.jobId === "string" &&
    /^\d+$/.test(part.jobId) &&
    Number.isSafeInteger(part.firstTask) &&
    Number.isSafeInteger(part.lastTask) &&
    part.firstTask >= 1 &&
    part.lastTask >= part.firstTask &&
    part.lastTask <= tasks
  );
}

/**
 * Checks that `job` is one the scheduler `identity` could have submitted (it may come from a
 * stored request, written by another process), so that no part of it reaches a command
 * unchecked: its scheduler, numeric job ids, task ranges within 1..tasks, a job name of
 * `[A-Za-z0-9_.-]` and a directory. Throws `INVALID_INPUT`.
 */
export function checkJobRef(job: JobRef, identity: Pick<SchedulerIdentity, "source" | "title">) {
  const valid =
    typeof job === "object" &&
    job !== null &&
    job.scheduler === identity.source &&
    Number.isSafeInteger(job.tasks) &&
    typeof job.name === "string" &&
    jobNamePattern.test(job.name) &&
    typeof job.directory === "string" &&
    !job.directory.includes("\u0000") &&
    Array.isArray(job.parts) &&
    job.parts.length > 0 &&
    job.parts.every((part) => validPart(part, job.tasks));
  if (!valid) {
    throw new SheepdogError(
      "INVALID_INPUT",
      identity.source,
      `${JSON.stringify(job)?.slice(0, 200)} is not a job this ${identity.title} scheduler submitted (scheduler "${identity.source}", numeric job ids, task ranges within 1..tasks, a job name of letters, digits and "_.-"). Pass the JobRef that submit() returned.`,
    );
  }
}

/**
 * Tasks `tasks` of `job` (numbers of the whole job), as each part numbers them (`1 ..` its
 * size), in runs of consecutive numbers, for a command that cancels some of a job's tasks; parts
 * without any are left out. Throws `INVALID_INPUT` for a number that is not one of the job's
 * tasks. `job` must have passed {@link checkJobRef}.
 */
export function partTaskRuns(
  job: JobRef,
  tasks: readonly number[],
  identity: Pick<SchedulerIdentity, "source">,
): { jobId: string; runs: { first: number; last: number }[] }[] {
  const bad = Array.isArray(tasks)
    ? tasks.find((task) => !Number.isSafeInteger(task) || task < 1 || task > job.tasks)
    : tasks;
  if (bad !== undefined || !Array.isArray(tasks)) {
    throw new SheepdogError(
      "INVALID_INPUT",
      identity.source,
      `cancelTasks takes task numbers of the job (1 to ${job.tasks}), not ${JSON.stringify(bad)?.slice(0, 100)}.`,
    );
  }
  const sorted = [...new Set(tasks)].sort((a, b) => a - b);
  return job.parts.flatMap((part) => {
    const runs: { first: number; last: number }[] = [];
    for (const task of sorted) {
      if (task < part.firstTask || task > part.lastTask) continue;
      const local = task - part.firstTask + 1;
      const last = runs.at(-1);
      if (last !== undefined && last.last === local - 1) last.last = local;
      else runs.push({ first: local, last: local });
    }
    return runs.length > 0 ? [{ jobId: part.jobId, runs }] : [];
  });
}

/** Splits tasks `1 .. tasks` into runs of at most `max` tasks. */
export function splitArray(tasks: number, max: number): { firstTask: number; lastTask: number }[] {
  const parts: { firstTask: number; lastTask: number }[] = [];
  for (let first = 1; first <= tasks; first += max) {
    parts.push({ firstTask: first, lastTask: Math.min(tasks, first + max - 1) });
  }
  return parts;
}

/** How {@link submitParts} submits one part and cancels those already queued. */
export interface PartSubmitter {
  /** Submits tasks `range` as the part number `index` (0-based); resolves with its job id. */
  submit(range: { firstTask: number; lastTask: number }, index: number): Promise<string>;
  /** Cancels the jobs already queued when a later part was refused. */
  cancel(jobIds: string[]): Promise<void>;
}

/**
 * Submits `spec` as one array job per range, in order, and returns its `JobRef`. If a part is
 * refused, the parts already queued are cancelled first, so a failed submit leaves nothing
 * running.
 */
export async function submitParts(
  spec: JobSpec,
  ranges: { firstTask: number; lastTask: number }[],
  scheduler: string,
  submitter: PartSubmitter,
): Promise<JobRef> {
  const parts: JobRef["parts"] = [];
  try {
    for (const [index, range] of ranges.entries()) {
      parts.push({ jobId: await submitter.submit(range, index), ...range });
    }
  } catch (error) {
    if (parts.length > 0) await submitter.cancel(parts.map((p) => p.jobId)).catch(() => undefined);
    throw error;
  }
  return {
    scheduler,
    id: parts.map((part) => part.jobId).join(","),
    tasks: spec.tasks,
    parts,
    directory: spec.directory,
    name: spec.name,
  };
}
