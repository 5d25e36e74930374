import type { ExecResult, JobRef } from "@sheepdog/contracts";
import { SheepdogError, shellQuote } from "@sheepdog/contracts";
import type { Commands } from "./commands.js";
import { checkRef } from "./job-ref.js";
import { source } from "./source.js";

/** Escapes the characters `find -name` reads as a pattern (`*`, `?`, `[`, `]`, `\`). */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

/** Checks that `marker` is one non-empty line, which `grep -F` takes as one fixed string. */
function checkMarker(marker: unknown): asserts marker is string {
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
 * The command that prints every line containing `marker` of the job's stdout files: GridEngine
 * writes them as `<name>.o<job number>` or `<name>.o<job number>.<task>` in the job's
 * directory (`-o`), every part of a split job alike. Only this job's name matches, so another
 * attempt's job (`<name>_r2`) is not read. A missing directory prints nothing.
 */
export function outputLinesCommand(job: JobRef, marker: string): string {
  const directory = job.directory.startsWith("-") ? `./${job.directory}` : job.directory;
  const dir = shellQuote(directory);
  const pattern = shellQuote(`${globEscape(job.name)}.o[0-9]*`);
  return `test -d ${dir} || exit 0; find ${dir} -maxdepth 1 -type f -name ${pattern} -exec grep -h -F -e ${shellQuote(marker)} -- {} +`;
}

/**
 * Every line of `job`'s task output that contains `marker`, read over the remote with `find`
 * and `grep -F`. No lines (grep's exit code 1) is an empty list; anything else that fails
 * rejects with `REMOTE_FAILED` and what the remote said.
 */
export async function outputLines(
  commands: Commands,
  job: JobRef,
  marker: string,
): Promise<string[]> {
  checkRef(job);
  checkMarker(marker);
  const { remote } = commands;
  let result: ExecResult;
  try {
    result = await remote.exec(outputLinesCommand(job, marker), {
      timeoutMs: commands.settings.pollTimeoutMs,
    });
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
