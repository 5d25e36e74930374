import { readFileSync } from "node:fs";
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
    if (line === "") continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (error) {
      throw usageError(`Line ${i + 1} of ${name} is not valid JSON: ${(error as Error).message}.`);
    }
    tuples.push(checkTuple(parsed, `Line ${i + 1} of ${name}`));
  }
  return tuples;
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
