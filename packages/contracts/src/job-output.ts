import { SheepdogError } from "./errors.js";
import type { ExecResult, Remote } from "./remote.js";
import type { JobRef } from "./scheduler.js";
import { shellQuote } from "./text.js";

/** Escapes the characters `find -name` reads as a pattern (`*`, `?`, `[`, `]`, `\`). */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

/**
 * Checks that `marker` is one non-empty line, which `grep -F` takes as one fixed string;
 * throws `INVALID_INPUT` from `source` otherwise.
 */
export function checkOutputMarker(marker: unknown, source: string): asserts marker is string {
  if (
    typeof marker !== "string" ||
    marker === "" ||
    /[\n\r]/.test(marker) ||
    marker.includes("\0")
  ) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `The marker to look for in the job's output must be one non-empty line of text, not ${JSON.stringify(marker)}.`,
    );
  }
}

/**
 * The shell command that prints every line containing `marker` of a job's stdout files, named
 * `<job name>.o<job number>[.<task>]` in the job's directory (GridEngine's names, which the
 * Slurm scheduler gives its files too). Only this job's name matches, so another attempt's
 * job (`<name>_r2`) is not read. A missing directory prints nothing; grep exits 1 when no
 * file had the marker. The job must have been checked by its scheduler first.
 */
export function outputLinesCommand(
  job: Pick<JobRef, "name" | "directory">,
  marker: string,
): string {
  const directory = job.directory.startsWith("-") ? `./${job.directory}` : job.directory;
  const dir = shellQuote(directory);
  const pattern = shellQuote(`${globEscape(job.name)}.o[0-9]*`);
  return `test -d ${dir} || exit 0; find ${dir} -maxdepth 1 -type f -name ${pattern} -exec grep -h -F -e ${shellQuote(marker)} -- {} +`;
}

/**
 * Every line of a job's task output that contains `marker` (see {@link outputLinesCommand}),
 * read over `remote`: the `outputLines` of schedulers that name their files so. No lines is an
 * empty list; anything else that fails rejects with `REMOTE_FAILED` from `source`.
 */
export async function readOutputLines(
  remote: Remote,
  job: JobRef,
  marker: string,
  options: { timeoutMs: number; source: string },
): Promise<string[]> {
  const { source } = options;
  checkOutputMarker(marker, source);
  let result: ExecResult;
  try {
    result = await remote.exec(outputLinesCommand(job, marker), { timeoutMs: options.timeoutMs });
  } catch (error) {
    throw SheepdogError.from(
      error,
      "REMOTE_FAILED",
      source,
      `Could not read the output files of job ${job.id} in ${job.directory} on ${remote.name}`,
    );
  }
  // find exits 1 when a grep found nothing in its batch of files (other batches may have).
  if (result.code !== 0 && !(result.code === 1 && result.stderr.trim() === "")) {
    throw new SheepdogError(
      "REMOTE_FAILED",
      source,
      `Cannot read the output files of job ${job.id} (${job.name}.o*) in ${job.directory} on ${remote.name} (exit code ${result.code ?? result.signal}): ${result.stderr.trim() || "no message"}. Check that the directory and its files are readable by the login user.`,
    );
  }
  return result.stdout.split("\n").filter((line) => line !== "");
}
