import { spawn, spawnSync } from "node:child_process";
import { SheepdogError } from "@sheepdog/contracts";
import { source as packageName } from "./source.js";
import { passedBefore, passedKey, rememberPassed } from "./syntax-cache.js";

/** One piece of Python source to check, and how its error names it. */
export interface SourceUnit {
  /** The file (or `py\`...\``) the source comes from, for the error. */
  where: string;
  source: string;
}

/** The environment variable naming the interpreter of the check; `off` turns it off. */
export const CHECK_PYTHON_VARIABLE = "SHEEPDOG_CHECK_PYTHON";

const CHECK_SCRIPT = `
import ast, json, sys
units = json.load(sys.stdin)
answer = {"version": sys.version.split()[0], "error": None}
for index, text in enumerate(units):
    try:
        ast.parse(text, "<%d>" % index)
    except SyntaxError as error:
        answer["error"] = {"unit": index, "line": error.lineno, "message": error.msg}
        break
    except (ValueError, RecursionError, MemoryError):
        pass
json.dump(answer, sys.stdout)
`;

interface CheckAnswer {
  version: string;
  error: { unit: number; line: number | null; message: string } | null;
}

/**
 * Parses `units` with a local Python (`python3`, or what {@link CHECK_PYTHON_VARIABLE} names),
 * so that a syntax error is reported before anything is submitted, not by every task on the
 * cluster. Without a local Python, or when it fails, nothing is checked (the nodes' Python
 * still reports the error). Never runs the code: `ast.parse` only reads it.
 *
 * @throws SheepdogError `INVALID_INPUT` naming the file, the line and Python's message.
 */
export function checkSyntax(units: readonly SourceUnit[]): void {
  const python = checkingPython();
  if (python === undefined || units.length === 0) return;
  const key = unitsKey(python, units);
  if (passedBefore(key)) return;
  const run = spawnSync(python, ["-I", "-c", CHECK_SCRIPT], {
    input: JSON.stringify(units.map((unit) => unit.source)),
    encoding: "utf8",
    timeout: CHECK_TIMEOUT_MS,
    maxBuffer: MAX_ANSWER_BYTES,
    stdio: ["pipe", "pipe", "ignore"],
  });
  if (run.error !== undefined || run.status !== 0) return;
  judgeAnswer(units, python, run.stdout, key);
}

/**
 * As {@link checkSyntax}, without blocking: the check runs in a Python process of its own
 * while the caller goes on (a Python's start alone can take a few hundred milliseconds), and
 * the promise rejects as `checkSyntax` throws.
 */
export async function checkSyntaxInBackground(units: readonly SourceUnit[]): Promise<void> {
  const python = checkingPython();
  if (python === undefined || units.length === 0) return;
  const key = unitsKey(python, units);
  if (passedBefore(key)) return;
  const stdout = await new Promise<string | undefined>((resolve) => {
    const child = spawn(python, ["-I", "-c", CHECK_SCRIPT], {
      stdio: ["pipe", "pipe", "ignore"],
      timeout: CHECK_TIMEOUT_MS,
    });
    let answer = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      answer += chunk;
      if (answer.length > MAX_ANSWER_BYTES) child.kill();
    });
    child.on("error", () => resolve(undefined));
    child.on("close", (status) => resolve(status === 0 ? answer : undefined));
    child.stdin.on("error", () => {});
    child.stdin.end(JSON.stringify(units.map((unit) => unit.source)));
  });
  if (stdout !== undefined) judgeAnswer(units, python, stdout, key);
}

const CHECK_TIMEOUT_MS = 20_000;
const MAX_ANSWER_BYTES = 1024 * 1024;

/** The remembered-pass entry of `units` as checked by `python` (see syntax-cache.ts). */
function unitsKey(python: string, units: readonly SourceUnit[]): string {
  return passedKey(
    python,
    units.map((unit) => unit.source),
  );
}

/** The interpreter of the check, `undefined` when it is turned off. */
function checkingPython(): string | undefined {
  const python = process.env[CHECK_PYTHON_VARIABLE]?.trim() || "python3";
  return python === "off" ? undefined : python;
}

/**
 * Throws the syntax error the check's answer names, if any, else remembers that the sources of
 * `key` passed; an answer it cannot read counts as no check.
 */
function judgeAnswer(
  units: readonly SourceUnit[],
  python: string,
  stdout: string,
  key: string,
): void {
  let answer: CheckAnswer;
  try {
    answer = JSON.parse(stdout) as CheckAnswer;
  } catch {
    return;
  }
  if (typeof answer !== "object" || answer === null || answer.error === undefined) return;
  const error = answer.error;
  if (!error) {
    rememberPassed(key);
    return;
  }
  const unit = units[error.unit];
  const line = error.line === null ? "" : ` at line ${error.line}`;
  throw new SheepdogError(
    "INVALID_INPUT",
    packageName,
    `${unit?.where ?? "The function's source"} has a Python syntax error${line}: ${error.message}. Fix it and run again (checked by the local ${python}, Python ${answer.version}, before anything was submitted; if the cluster's Python accepts what this one does not, set ${CHECK_PYTHON_VARIABLE}=off).`,
  );
}
