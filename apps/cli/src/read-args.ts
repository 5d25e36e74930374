import { createReadStream, openSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { usageError } from "./settings.js";

function checkTuple(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) {
    throw usageError(
      `${where} must be an array of positional arguments, like [1, 2]; wrap a single argument as [x].`,
    );
  }
  return value;
}

/**
 * The argument tuples in a JSON file (an array of arrays) or a JSON Lines file (one array per
 * line). A `.jsonl` name is read as JSON Lines and a `.json` name as JSON; anything else
 * (standard input, `-`) is JSON when the whole text is an array of arrays, else JSON Lines.
 */
export function parseArgTuples(text: string, name: string): unknown[][] {
  if (!name.endsWith(".jsonl")) {
    let whole: unknown;
    let failure: Error | undefined;
    try {
      whole = JSON.parse(text);
    } catch (error) {
      failure = error as Error;
    }
    if (name.endsWith(".json")) {
      if (failure) throw usageError(`${name} is not valid JSON: ${failure.message}.`);
      if (!Array.isArray(whole)) throw usageError(`${name} must hold an array of argument arrays.`);
      return whole.map((item, i) => checkTuple(item, `Item ${i} of ${name}`));
    }
    if (Array.isArray(whole) && whole.every(Array.isArray)) return whole as unknown[][];
  }
  const tuples: unknown[][] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]?.trim() ?? "";
    if (line !== "") tuples.push(parseLine(line, i + 1, name));
  }
  return tuples;
}

/** One line of a JSON Lines file of argument tuples (`number` counts from 1), checked. */
function parseLine(line: string, number: number, name: string): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (error) {
    throw usageError(`Line ${number} of ${name} is not valid JSON: ${(error as Error).message}.`);
  }
  return checkTuple(parsed, `Line ${number} of ${name}`);
}

/** Reads `--args`: a file path, or `-` for standard input. */
export function readArgs(path: string, stdin: () => string): unknown[][] {
  let text: string;
  try {
    text = path === "-" ? stdin() : readFileSync(path, "utf8");
  } catch (error) {
    throw usageError(`Cannot read --args ${path}: ${(error as Error).message}.`);
  }
  return parseArgTuples(text, path);
}

/**
 * Reads `--args` for a map that streams: a `.jsonl` file line by line, as the map takes its
 * tuples (never whole), a bad line failing the map when it is reached; anything else (a
 * `.json` file, standard input) whole, as {@link readArgs} does.
 */
export function streamArgs(
  path: string,
  stdin: () => string,
): Iterable<unknown[]> | AsyncIterable<unknown[]> {
  if (path === "-" || !path.endsWith(".jsonl")) return readArgs(path, stdin);
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    throw usageError(`Cannot read --args ${path}: ${(error as Error).message}.`);
  }
  return jsonLinesOf(fd, path);
}

/** The argument tuples of an open JSON Lines file, a line at a time; the file closes at the end. */
async function* jsonLinesOf(fd: number, name: string): AsyncGenerator<unknown[]> {
  const input = createReadStream("", { fd });
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let number = 0;
  try {
    for await (const raw of lines) {
      number += 1;
      const line = raw.trim();
      if (line !== "") yield parseLine(line, number, name);
    }
  } finally {
    lines.close();
    input.destroy();
  }
}
