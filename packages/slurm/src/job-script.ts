import { randomBytes } from "node:crypto";
import type { JobSpec, TaskResources } from "@sheepdog/contracts";
import { clockTime, SheepdogError } from "@sheepdog/contracts";
import { checkOptions } from "./internal/directives.js";
import { source } from "./internal/source.js";

/** Options of {@link jobScript}. */
export interface JobScriptOptions {
  /** The first task this script's job runs (a part of a split array starts later). @default 1 */
  firstTask?: number;
  /** The last task this script's job runs. @default spec.tasks */
  lastTask?: number;
}

const namePattern = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const shellPattern = /^\/[A-Za-z0-9_./+-]*$/;
const directoryPattern = /^[A-Za-z0-9_./+@=-]+$/;

function invalid(message: string): SheepdogError {
  return new SheepdogError("CONFIG_INVALID", source, message);
}

function checkName(spec: JobSpec): void {
  if (typeof spec.name !== "string" || !namePattern.test(spec.name)) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `Job name ${JSON.stringify(spec.name)} cannot be used: it needs a letter or "_" first, then only letters, digits, "_", "." and "-".`,
    );
  }
  if (!Number.isSafeInteger(spec.tasks) || spec.tasks < 1) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `A job needs a whole number of tasks, at least 1, not ${JSON.stringify(spec.tasks)}.`,
    );
  }
}

function checkPaths(spec: JobSpec): void {
  if (typeof spec.shell !== "string" || !shellPattern.test(spec.shell)) {
    throw invalid(
      `shell ${JSON.stringify(spec.shell)} cannot be used: Slurm jobs need the interpreter's absolute path, made of letters, digits and "_./+-" only (for example "/usr/bin/python3").`,
    );
  }
  if (
    typeof spec.directory !== "string" ||
    !directoryPattern.test(spec.directory) ||
    spec.directory.startsWith("-")
  ) {
    throw invalid(
      `Job directory ${JSON.stringify(spec.directory)} cannot be used: give a path (relative to the remote home directory, or absolute) of letters, digits and "_./+@=-" only, such as ".sheepdog".`,
    );
  }
}

/**
 * Checks the parts of a spec that {@link jobScript} writes into directives and commands, and
 * returns the options' arguments. Throws `CONFIG_INVALID` or `INVALID_INPUT` naming the field.
 */
export function checkSpec(spec: JobSpec): string[][] {
  if (typeof spec !== "object" || spec === null) {
    throw new SheepdogError("INVALID_INPUT", source, "A job spec must be an object.");
  }
  checkName(spec);
  checkPaths(spec);
  if (typeof spec.program !== "string" || spec.program.includes("\u0000")) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      "The job's program must be a string without NUL characters.",
    );
  }
  return checkOptions(spec.options);
}

/** The `#SBATCH` requests for resources in no scheduler's dialect. */
export function resourceDirectives(resources: TaskResources | undefined): string[] {
  if (!resources) return [];
  const lines: string[] = [];
  if (resources.memoryBytes !== undefined) {
    lines.push(`--mem=${Math.max(1, Math.ceil(resources.memoryBytes / 1024 ** 2))}M`);
  }
  if (resources.timeSeconds !== undefined) lines.push(`--time=${clockTime(resources.timeSeconds)}`);
  if (resources.cpus !== undefined) lines.push(`--cpus-per-task=${resources.cpus}`);
  if (resources.queue !== undefined) lines.push(`--partition=${resources.queue}`);
  return lines;
}

/** A heredoc delimiter that no line of `program` is. */
function delimiterFor(program: string): string {
  for (;;) {
    const delimiter = `SHEEPDOG_PROGRAM_${randomBytes(8).toString("hex")}`;
    if (!program.split("\n").includes(delimiter)) return delimiter;
  }
}

/**
 * The Slurm batch script for `spec`, a `/bin/sh` script: `#SBATCH` directives (the resources,
 * then `spec.options` as given, so that they win, then the job's name, array, and output files
 * in the job directory), then a line that sets `SHEEPDOG_TASK_ID` to the task's number and
 * runs `spec.program` with `spec.shell`.
 *
 * Slurm numbers array tasks below its `MaxArraySize`, so the tasks `firstTask .. lastTask` of
 * a split job run as array indices `1 .. lastTask - firstTask + 1`, and the script adds the
 * offset. sbatch reads the `#SBATCH` lines itself (no shell); the options are checked so that
 * none can add a line or a directive, and the program is passed in a quoted heredoc, which no
 * shell expands.
 */
export function jobScript(spec: JobSpec, options: JobScriptOptions = {}): string {
  checkSpec(spec);
  const firstTask = options.firstTask ?? 1;
  const lastTask = options.lastTask ?? spec.tasks;
  if (
    !Number.isSafeInteger(firstTask) ||
    !Number.isSafeInteger(lastTask) ||
    firstTask < 1 ||
    lastTask < firstTask ||
    lastTask > spec.tasks
  ) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `Tasks ${firstTask}..${lastTask} are not a range within 1..${spec.tasks}.`,
    );
  }
  const directives = [
    ...resourceDirectives(spec.resources),
    ...spec.options,
    `--job-name=${spec.name}`,
    `--array=1-${lastTask - firstTask + 1}`,
    `--output=${spec.name}.o%A.%a`,
    `--error=${spec.name}.e%A.%a`,
  ];
  const program = spec.program.endsWith("\n") ? spec.program : `${spec.program}\n`;
  const delimiter = delimiterFor(program);
  return [
    "#!/bin/sh",
    ...directives.map((directive) => `#SBATCH ${directive}`),
    `SHEEPDOG_TASK_ID=$((SLURM_ARRAY_TASK_ID + ${firstTask - 1}))`,
    "export SHEEPDOG_TASK_ID",
    `exec ${spec.shell} - <<'${delimiter}'`,
    `${program}${delimiter}`,
    "",
  ].join("\n");
}
