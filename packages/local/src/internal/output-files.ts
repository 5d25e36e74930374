import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { SheepdogError } from "@sheepdog/contracts";
import { source } from "./source.js";

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
}

/**
 * Every line containing `marker` of the stdout files (`<name>.o<job>.<task>`) that the tasks of
 * job `name` wrote in `directory`, read from the file system (so it works in a later process
 * too). A missing directory or file is no output; any other failure to read rejects with
 * `REMOTE_FAILED`.
 */
export async function readOutputLines(
  directory: string,
  name: string,
  marker: string,
): Promise<string[]> {
  if (marker === "" || /[\n\r]/.test(marker)) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `outputLines needs a marker of one non-empty line, not ${JSON.stringify(marker)}.`,
    );
  }
  const prefix = `${name}.o`;
  const lines: string[] = [];
  try {
    const files = (await readdir(directory)).filter(
      (file) => file.startsWith(prefix) && /^\d/.test(file.slice(prefix.length)),
    );
    for (const file of files) {
      const text = await readFile(join(directory, file), "utf8").catch((error: unknown) => {
        if (isMissing(error)) return "";
        throw error;
      });
      for (const line of text.split("\n")) if (line.includes(marker)) lines.push(line);
    }
  } catch (error) {
    if (isMissing(error)) return lines;
    throw SheepdogError.from(
      error,
      "REMOTE_FAILED",
      source,
      `Cannot read the output files of job ${name} in ${directory}`,
    );
  }
  return lines;
}
