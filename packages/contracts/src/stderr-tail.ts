import { randomBytes } from "node:crypto";
import type { ExecResult } from "./remote.js";
import { shellQuote } from "./text.js";

/** The most lines of a task's stderr that its error carries (the last ones). */
export const STDERR_TAIL_LINES = 5;

/** The most bytes read from the end of a task's stderr file. */
export const STDERR_TAIL_BYTES = 1024;

/** A line that starts each file's tail in the output of {@link stderrTailsCommand}. */
function markerLine(marker: string): string {
  return `==sheepdog-stderr-tail ${marker}==`;
}

/**
 * One shell command that prints the end ({@link STDERR_TAIL_BYTES}) of each of `files` (paths
 * relative to the login's home directory, or absolute), each after a line of its own made from
 * `marker`, so that {@link parseStderrTails} tells them apart. A missing or unreadable file
 * prints nothing after its line; the command always exits 0.
 */
export function stderrTailsCommand(files: readonly string[], marker: string): string {
  const paths = files.map((file) => shellQuote(file.startsWith("-") ? `./${file}` : file));
  const line = shellQuote(markerLine(marker));
  return `for f in ${paths.join(" ")}; do printf '%s\\n' ${line}; tail -c ${STDERR_TAIL_BYTES} -- "$f" 2>/dev/null; printf '\\n'; done; exit 0`;
}

/** Replaces characters that would act on a terminal (escapes, bells, ...) with "?". */
function printable(line: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are the point
  return line.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "?").trimEnd();
}

/** The last lines of one file's tail, as its error shows them ("" when there are none). */
export function tailLines(text: string): string {
  // A tail read to its limit may start inside a line (or a character): that line goes.
  const lines = text.split(/\r?\n|\r/);
  if (Buffer.byteLength(text) >= STDERR_TAIL_BYTES && lines.length > 1) lines.shift();
  const kept = lines.map(printable);
  while (kept.length > 0 && kept[kept.length - 1] === "") kept.pop();
  while (kept.length > 0 && kept[0] === "") kept.shift();
  return kept.slice(-STDERR_TAIL_LINES).join("\n");
}

/**
 * The tails that {@link stderrTailsCommand} printed, one per file in its order (`""` for a
 * file that was missing or empty), each cut to its last {@link STDERR_TAIL_LINES} lines.
 */
export function parseStderrTails(stdout: string, count: number, marker: string): string[] {
  const tails: string[] = [];
  const line = markerLine(marker);
  let current: string[] | undefined;
  const close = () => {
    // The command ends each file's tail with one newline of its own: not the file's.
    if (current !== undefined) tails.push(tailLines(current.slice(0, -1).join("\n")));
  };
  for (const text of stdout.split("\n")) {
    if (text === line) {
      close();
      current = [];
    } else current?.push(text);
  }
  close();
  while (tails.length < count) tails.push("");
  return tails.slice(0, count);
}

/**
 * The tails of task stderr files, read with one command run by `run` (a scheduler's own way of
 * running commands on its head node): one per file, `""` for a file that is missing, empty or
 * unreadable. Never rejects: a failure to read is no tail at all, since the tail only adds to
 * an error that is known without it.
 */
export async function readStderrTails(
  run: (command: string) => Promise<ExecResult>,
  files: readonly string[],
): Promise<string[]> {
  if (files.length === 0) return [];
  const marker = randomBytes(9).toString("base64url");
  try {
    const result = await run(stderrTailsCommand(files, marker));
    if (result.code !== 0) return files.map(() => "");
    return parseStderrTails(result.stdout, files.length, marker);
  } catch {
    return files.map(() => "");
  }
}

/**
 * A task's end `reason` followed by the tail of its stderr (see {@link readStderrTails}), which
 * says why a task ended without reporting when its worker knew: the server could not be reached,
 * the interpreter is missing. `reason` alone when the tail is empty.
 */
export function withStderrTail(reason: string, tail: string): string {
  if (tail === "") return reason;
  return `${reason}; the end of its stderr:\n${tail.replace(/^/gm, "    ")}`;
}
