import type { JobRef, JobSpec, SheepdogErrorCode } from "@sheepdog/contracts";
import { SheepdogError, splitArray, submitParts } from "@sheepdog/contracts";
import { checkSpec, jobScript } from "../job-script.js";
import type { Commands } from "./commands.js";
import { parseMaxArrayTasks, parseQsubJobId, qdelFailures } from "./qsub.js";
import { source } from "./source.js";

/** SGE's own default for `max_aj_tasks`, assumed when `qconf -sconf` cannot be read. */
const defaultMaxArrayTasks = 75_000;

/** Whether a job of `tasks` tasks needs `max_aj_tasks`: one task fits in any array. */
export function needsArrayLimit(tasks: number): boolean {
  return tasks > 1;
}

/**
 * Reads the cluster's `max_aj_tasks` once (`qconf -sconf`), or 75000 when it cannot be read.
 * A failure to run the command (connection lost) is not kept: the next call asks again.
 */
export function maxArrayTasksReader(commands: Commands): () => Promise<number> {
  let max: Promise<number> | undefined;
  return () => {
    max ??= commands
      .run("qconf -sconf", commands.settings.pollTimeoutMs, "SUBMIT_FAILED", "qconf -sconf")
      .then(
        (result) =>
          (result.code === 0 ? parseMaxArrayTasks(result.stdout) : undefined) ??
          defaultMaxArrayTasks,
      );
    max.catch(() => {
      max = undefined;
    });
    return max;
  };
}

/**
 * Runs `qdel` on jobs (`60`) or tasks of them (`60.5-6`, `60.8`); jobs and tasks that already
 * ended are not an error, any other refusal is.
 */
export async function qdel(
  commands: Commands,
  targets: string[],
  code: SheepdogErrorCode,
): Promise<void> {
  const command = `qdel ${targets.join(" ")}`;
  const result = await commands.run(command, commands.settings.submitTimeoutMs, code, "qdel");
  if (result.code === 127) throw commands.notFound(result, "qdel", code);
  if (result.code === 0) return;
  const failures = qdelFailures(`${result.stdout}\n${result.stderr}`);
  if (failures.length > 0) {
    throw new SheepdogError(
      code,
      source,
      `${command} failed (exit code ${result.code}): ${failures.join(" ")}`,
    );
  }
}

/** Uploads one part's job script and runs `qsub` on it; resolves with its job id. */
function submitPart(
  commands: Commands,
  spec: JobSpec,
  directory: string,
  file: string,
  range: { firstTask: number; lastTask: number },
): Promise<string> {
  return commands.submitScript({
    directory,
    file,
    script: jobScript(spec, range),
    jobName: spec.name,
    submit: "qsub -terse",
    parseJobId: parseQsubJobId,
    idName: "job number",
    lister: "qstat",
  });
}

/**
 * Submits `spec` as one array job, or as several of at most `maxArrayTasks` tasks each; if a
 * later part is refused, the parts already queued are deleted, so a failed submit leaves
 * nothing running.
 */
export async function submitJob(
  commands: Commands,
  spec: JobSpec,
  maxArrayTasks: () => Promise<number>,
): Promise<JobRef> {
  try {
    checkSpec(spec);
  } catch (error) {
    throw SheepdogError.from(error, "INVALID_INPUT", source, "Invalid job spec");
  }
  const directory = spec.directory.replace(/(.)\/+$/, "$1");
  // Two round trips to the head node that do not depend on each other.
  const [max] = await Promise.all([
    needsArrayLimit(spec.tasks) ? maxArrayTasks() : 1,
    commands.makeDirectory(directory),
  ]);
  const ranges = splitArray(spec.tasks, max);
  return submitParts(spec, ranges, source, {
    submit: (range, index) => {
      const file = ranges.length === 1 ? `${spec.name}.py` : `${spec.name}.${index + 1}.py`;
      return submitPart(commands, spec, directory, file, range);
    },
    cancel: (jobIds) => qdel(commands, jobIds, "SUBMIT_FAILED"),
  });
}
