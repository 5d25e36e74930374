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
const directoryPattern = /^[A-Za-z0-9_./+@%=-]+$/;

function invalid(message: string): SheepdogError {
  return new SheepdogError("CONFIG_INVALID", source, message);
}

/**
 * Checks the parts of a spec that {@link jobScript} writes into directives and commands, and
 * returns the options' words. Throws `CONFIG_INVALID` or `INVALID_INPUT` naming the field.
 */
export function checkSpec(spec: JobSpec): string[][] {
  if (typeof spec !== "object" || spec === null) {
    throw new SheepdogError("INVALID_INPUT", source, "A job spec must be an object.");
  }
  if (typeof spec.name !== "string" || !namePattern.test(spec.name)) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `Job name ${JSON.stringify(spec.name)} cannot be used: GridEngine needs a letter or "_" first, then only letters, digits, "_", "." and "-".`,
    );
  }
  if (!Number.isSafeInteger(spec.tasks) || spec.tasks < 1) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `A job needs a whole number of tasks, at least 1, not ${JSON.stringify(spec.tasks)}.`,
    );
  }
  if (typeof spec.shell !== "string" || !shellPattern.test(spec.shell)) {
    throw invalid(
      `shell ${JSON.stringify(spec.shell)} cannot be used: GridEngine needs the interpreter's absolute path, made of letters, digits and "_./+-" only (for example "/usr/bin/python3").`,
    );
  }
  if (
    typeof spec.directory !== "string" ||
    !directoryPattern.test(spec.directory) ||
    spec.directory.startsWith("-")
  ) {
    throw invalid(
      `Job directory ${JSON.stringify(spec.directory)} cannot be used: give a path (relative to the remote home directory, or absolute) of letters, digits and "_./+@%=-" only, such as ".sheepdog".`,
    );
  }
  if (typeof spec.program !== "string") {
    throw new SheepdogError("INVALID_INPUT", source, "The job's program must be a string.");
  }
  const directive = /^#\$/m.exec(spec.program);
  if (directive) {
    const line = spec.program.slice(directive.index).split("\n", 1)[0] ?? "";
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `The job's program has a line starting with "#$" (${JSON.stringify(line.slice(0, 60))}), which qsub would read as a directive wherever it stands. Indent it or change it.`,
    );
  }
  if (spec.program.includes("\u0000")) {
    throw new SheepdogError("INVALID_INPUT", source, "The job's program contains a NUL character.");
  }
  return checkOptions(spec.options);
}

/**
 * The GridEngine requests for resources in no scheduler's dialect: `-l h_vmem` (GridEngine
 * enforces it as each process's address-space limit), `-l h_rt`, `-pe smp <cpus>` (the
 * parallel environment most sites call `smp`; name another with geOpts) and `-q`.
 */
export function resourceOptions(resources: TaskResources | undefined): string[] {
  if (!resources) return [];
  const options: string[] = [];
  if (resources.memoryBytes !== undefined) {
    options.push(`-l h_vmem=${Math.max(1, Math.ceil(resources.memoryBytes / 1024 ** 2))}M`);
  }
  if (resources.timeSeconds !== undefined)
    options.push(`-l h_rt=${clockTime(resources.timeSeconds)}`);
  if (resources.cpus !== undefined && resources.cpus > 1) options.push(`-pe smp ${resources.cpus}`);
  if (resources.queue !== undefined) options.push(`-q ${resources.queue}`);
  return options;
}

/** `$HOME/<directory>`, or the directory itself when absolute (qsub expands `$HOME`). */
export function jobDirectory(directory: string): string {
  const trimmed = directory.replace(/\/+$/, "") || "/";
  if (trimmed.startsWith("/")) return trimmed;
  return trimmed === "." ? "$HOME" : `$HOME/${trimmed.replace(/^\.\//, "")}`;
}

/**
 * The GridEngine job script for `spec`: a `#!<shell>` line, one `#$` directive per resource
 * request ({@link resourceOptions}) and per option of `spec.options` (as given, after them, so
 * that they win), `-t first-last`, `-S <shell>` and `-N <name>`, then `-wd`, `-o`
 * and `-e` pointing at the job directory unless an option already sets them, then
 * `spec.program` unchanged.
 *
 * qsub reads the `#$` lines itself, word by word (no shell is involved), and the job runs
 * with `shell` directly, so no value can run a command; what could add a line (newlines, NUL,
 * control characters), a `#`, and the options Sheepdog sets (`-t`, `-N`, `-S`, `-b`, `-C`,
 * `-sync`) are refused with `CONFIG_INVALID`.
 *
 * @example
 * ```ts
 * jobScript({ name: "sheepdog_1", tasks: 3, shell: "/usr/bin/python3", options: ["-l h_rt=0:10:0"],
 *   directory: ".sheepdog", program: "print('hi')\n" });
 * ```
 */
export function jobScript(spec: JobSpec, options: JobScriptOptions = {}): string {
  const words = checkSpec(spec);
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
  const given = new Set(words.flat());
  const directory = jobDirectory(spec.directory);
  const lines = [`#!${spec.shell}`];
  for (const option of [...resourceOptions(spec.resources), ...spec.options]) {
    lines.push(`#$ ${option}`);
  }
  lines.push(`#$ -t ${firstTask}-${lastTask}`, `#$ -S ${spec.shell}`, `#$ -N ${spec.name}`);
  if (!given.has("-wd") && !given.has("-cwd")) lines.push(`#$ -wd ${directory}`);
  if (!given.has("-o")) lines.push(`#$ -o ${directory}`);
  if (!given.has("-e")) lines.push(`#$ -e ${directory}`);
  const program = spec.program.endsWith("\n") ? spec.program : `${spec.program}\n`;
  return `${lines.join("\n")}\n${program}`;
}
