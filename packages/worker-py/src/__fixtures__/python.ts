import { execFileSync, spawn } from "node:child_process";

/**
 * The interpreter the tests use: Debian's, by its full path, unless SHEEPDOG_TEST_PYTHON
 * names another (to run the same tests on Python 3.8, say).
 */
export const PYTHON = process.env.SHEEPDOG_TEST_PYTHON ?? "/usr/bin/python3";

/** Pickles of Python expressions (trusted test text), made by real Python. */
export function pyPickle(expressions: readonly string[], protocol = 4): Uint8Array[] {
  const script = [
    "import base64, json, pickle, sys",
    "exprs = json.load(sys.stdin)",
    `print(json.dumps([base64.b64encode(pickle.dumps(eval(e), ${protocol})).decode() for e in exprs]))`,
  ].join("\n");
  const out = execFileSync(PYTHON, ["-c", script], { input: JSON.stringify(expressions) });
  return (JSON.parse(out.toString()) as string[]).map(
    (b) => new Uint8Array(Buffer.from(b, "base64")),
  );
}

/** `repr()` of unpickled values, by real Python (null for a missing value). */
export function pyRepr(pickles: readonly (Uint8Array | null)[]): (string | null)[] {
  const script = [
    "import base64, json, pickle, sys",
    "items = json.load(sys.stdin)",
    "print(json.dumps([None if i is None else repr(pickle.loads(base64.b64decode(i))) for i in items]))",
  ].join("\n");
  const input = JSON.stringify(
    pickles.map((p) => (p === null ? null : Buffer.from(p).toString("base64"))),
  );
  return JSON.parse(execFileSync(PYTHON, ["-c", script], { input }).toString()) as (
    | string
    | null
  )[];
}

/** A process's exit code, stdout and stderr. */
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `PYTHON file` (or `PYTHON ...argv`) with extra environment, to its end; its stdin is
 * `input` (empty by default).
 */
export function runPython(
  file: string | readonly string[],
  env: Record<string, string>,
  options: { timeoutMs?: number; onStderr?: (text: string) => void; input?: string } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, typeof file === "string" ? [file] : [...file], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (text: string) => {
      stdout += text;
    });
    child.stderr.setEncoding("utf8").on("data", (text: string) => {
      stderr += text;
      options.onStderr?.(text);
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    // A program that exits without reading its input shows that in its exit code; the EPIPE
    // it leaves on stdin says nothing more.
    child.stdin.on("error", () => undefined);
    if (options.input === undefined) child.stdin.end();
    else child.stdin.end(options.input);
  });
}
