import type { JobRef, JobSpec, SheepdogErrorCode } from "@sheepdog/contracts";
import { SheepdogError, splitArray, submitParts } from "@sheepdog/contracts";
import { checkSpec, jobScript } from "../job-script.js";
import type { Commands } from "./commands.js";
import { outputOf } from "./commands.js";
import { parseAccounting, parseMaxArraySize, parseSbatchJobId } from "./parse.js";
import { source } from "./source.js";

/** Slurm's own default `MaxArraySize`, assumed when `scontrol show config` cannot be read. */
const defaultMaxArraySize = 1001;

/** What Sheepdog needs of the cluster's configuration. */
export interface ClusterConfig {
  /** The most tasks one array may have: indices run below `MaxArraySize`. */
  maxArrayTasks: number;
  /** Whether `sacct` has accounting to read (AccountingStorageType is slurmdbd). */
  accounting: boolean;
}

/**
 * Reads `scontrol show config` once. A failure to run it (connection lost) is not kept: the
 * next call asks again; a configuration that does not say is Slurm's defaults.
 */
export function configReader(commands: Commands): () => Promise<ClusterConfig> {
  let config: Promise<ClusterConfig> | undefined;
  return () => {
    config ??= commands
      .run("scontrol show config", commands.settings.pollTimeoutMs, "SCHEDULER_FAILED", "scontrol")
      .then((result) => {
        const text = result.code === 0 ? result.stdout : "";
        const maxArraySize = parseMaxArraySize(text) ?? defaultMaxArraySize;
        return { maxArrayTasks: Math.max(1, maxArraySize - 1), accounting: parseAccounting(text) };
      });
    config.catch(() => {
      config = undefined;
    });
    return config;
  };
}

/**
 * Runs `scancel` on jobs (`2253`) or tasks of them (`'2253_[5-6,8]'`, quoted for the shell);
 * jobs and tasks that already ended are not an error, any other refusal is.
 */
export async function scancel(
  commands: Commands,
  targets: string[],
  code: SheepdogErrorCode,
): Promise<void> {
  const command = `scancel ${targets.join(" ")}`;
  const result = await commands.run(command, commands.settings.submitTimeoutMs, code, "scancel");
  if (result.code === 127) throw commands.notFound(result, "scancel", code);
  if (result.code === 0) return;
  const failures = outputOf(result)
    .split(/(?=scancel: )/)
    .filter((line) => line.trim() !== "" && !/already completed|Invalid job id/i.test(line));
  if (failures.length > 0) {
    throw new SheepdogError(
      code,
      source,
      `${command} failed (exit code ${result.code}): ${failures.join(" ")}`,
    );
  }
}

/** Uploads one part's job script and runs `sbatch` on it; resolves with its job id. */
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
    submit: "sbatch --parsable",
    parseJobId: parseSbatchJobId,
    idName: "job id",
    lister: "squeue",
  });
}

/**
 * Submits `spec` as one array job, or as several of at most `MaxArraySize - 1` tasks each; if
 * a later part is refused, the parts already queued are cancelled, so a failed submit leaves
 * nothing running.
 */
export async function submitJob(
  commands: Commands,
  spec: JobSpec,
  config: () => Promise<ClusterConfig>,
): Promise<JobRef> {
  try {
    checkSpec(spec);
  } catch (error) {
    throw SheepdogError.from(error, "INVALID_INPUT", source, "Invalid job spec");
  }
  const directory = spec.directory.replace(/(.)\/+$/, "$1");
  const [{ maxArrayTasks }] = await Promise.all([config(), commands.makeDirectory(directory)]);
  const ranges = splitArray(spec.tasks, maxArrayTasks);
  return submitParts(spec, ranges, source, {
    submit: (range, index) => {
      const file = ranges.length === 1 ? `${spec.name}.sh` : `${spec.name}.${index + 1}.sh`;
      return submitPart(commands, spec, directory, file, range);
    },
    cancel: (jobIds) => scancel(commands, jobIds, "SUBMIT_FAILED"),
  });
}
