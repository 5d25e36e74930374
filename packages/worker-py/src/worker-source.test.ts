import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import type { WorkerLaunch } from "@sheepdog/contracts";
import {
  logCutMark,
  MAX_HOST_LENGTH,
  MAX_LOG_BYTES,
  NS_FUNCTION_MARKER,
  REPORTS_CONTENT_TYPE,
  STDOUT_REPORT_PREFIX,
  TASK_CONTENT_TYPE,
  WIRE_VERSION,
  WORKER_EXIT_CODES,
} from "@sheepdog/contracts";
import { describe, expect, it } from "vitest";
import { PYTHON } from "./__fixtures__/python.js";
import { workerPath, workerProgram, workerSource } from "./worker-source.js";

const launch: WorkerLaunch = {
  url: "http://head.example:8123",
  tokenFile: ".sheepdog/sheepdog_7_ab12.token",
  request: 7,
  pickleProtocol: 4,
  retryWindowSeconds: 600,
};

/** True when `text` is printable ASCII, tabs and newlines only. */
function isPlainAscii(text: string): boolean {
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (!(code === 9 || code === 10 || (code >= 0x20 && code <= 0x7e))) return false;
  }
  return true;
}

/** The launch object the program's last line hands to main(), as Python reads it. */
function launchSeenByPython(program: string): unknown {
  const script = [
    "import ast, json, sys",
    "tree = ast.parse(sys.stdin.read())",
    "block = tree.body[-1]",
    "call = block.body[0].value.args[0].args[0]",
    "assert isinstance(call.args[0], ast.Constant)",
    "print(json.dumps(json.loads(call.args[0].value)))",
  ].join("\n");
  return JSON.parse(execFileSync(PYTHON, ["-c", script], { input: program }).toString());
}

describe("workerSource", () => {
  it("is the text of python/sheepdog_worker.py", () => {
    expect(workerPath).toMatch(/python\/sheepdog_worker\.py$/);
    expect(workerSource()).toBe(readFileSync(workerPath, "utf8"));
    expect(workerSource()).toContain("def main(launch, environ=None):");
  });

  it("is ASCII and parses as Python 3.8", () => {
    expect(isPlainAscii(workerSource())).toBe(true);
    const check =
      "import ast, sys; ast.parse(sys.stdin.read(), feature_version=(3, 8)); print('ok')";
    expect(execFileSync(PYTHON, ["-c", check], { input: workerSource() }).toString().trim()).toBe(
      "ok",
    );
  });

  it("uses the constants of wire.ts", () => {
    const script = [
      "import json, sys",
      "sys.path.insert(0, sys.argv[1])",
      "import sheepdog_worker as w",
      "print(json.dumps([w.WIRE_VERSION, w.TASK_CONTENT_TYPE, w.REPORTS_CONTENT_TYPE,",
      "  w.STDOUT_REPORT_PREFIX, w.NS_FUNCTION_MARKER,",
      "  [w.EXIT_OK, w.EXIT_UNDELIVERED, w.EXIT_USAGE, w.EXIT_REFUSED, w.EXIT_IMPOSTOR],",
      "  w.MAX_LOG_BYTES, w.MAX_HOST_LENGTH, w.log_cut_mark(1234)]))",
    ].join("\n");
    const seen = JSON.parse(
      execFileSync(PYTHON, ["-c", script, dirname(workerPath)], {
        env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" },
      }).toString(),
    ) as unknown;
    expect(seen).toEqual([
      WIRE_VERSION,
      TASK_CONTENT_TYPE,
      REPORTS_CONTENT_TYPE,
      STDOUT_REPORT_PREFIX,
      NS_FUNCTION_MARKER,
      [
        WORKER_EXIT_CODES.ok,
        WORKER_EXIT_CODES.undelivered,
        WORKER_EXIT_CODES.usage,
        WORKER_EXIT_CODES.refused,
        WORKER_EXIT_CODES.impostor,
      ],
      MAX_LOG_BYTES,
      MAX_HOST_LENGTH,
      logCutMark(1234),
    ]);
  });

  it("has no main block of its own (the program adds one)", () => {
    expect(workerSource()).not.toMatch(/^if __name__/m);
  });
});

describe("workerProgram", () => {
  it("ends with a main() call carrying the launch settings", () => {
    const program = workerProgram({ ...launch, url: "http://head.example:8123/" });
    expect(program.startsWith(workerSource())).toBe(true);
    const tail = program.slice(workerSource().length);
    expect(tail).toBe(
      '\n\nif __name__ == "__main__":\n    sys.exit(main(json.loads("{\\"url\\":\\"http://head.example:8123\\",\\"tokenFile\\":\\".sheepdog/sheepdog_7_ab12.token\\",\\"request\\":7,\\"pickleProtocol\\":4,\\"retryWindowSeconds\\":600}")))\n',
    );
    expect(launchSeenByPython(program)).toEqual(launch);
  });

  it("escapes values so that they cannot end the literal or add code", () => {
    const hostile = `x"); import os; os.system("boom") #\\ ' """ \t \u2028 é 😀 \udc80 \\u0041`;
    const program = workerProgram({ ...launch, tokenFile: hostile, memoryLimitBytes: 2 ** 31 });
    expect(isPlainAscii(program)).toBe(true);
    expect(program.split("\n").filter((l) => l.includes("os.system"))).toHaveLength(1);
    const seen = launchSeenByPython(program) as WorkerLaunch;
    // Python's JSON keeps the lone surrogate as it is; JSON.stringify on the way back
    // escapes it again, so compare through JSON.
    expect(JSON.stringify(seen)).toBe(
      JSON.stringify({ ...launch, tokenFile: hostile, memoryLimitBytes: 2 ** 31 }),
    );
  });

  it("keeps only the launch fields: a token passed by mistake never reaches the program", () => {
    const program = workerProgram({
      ...launch,
      extra: "nope",
      token: "secret-token-value",
    } as WorkerLaunch);
    expect(program).not.toContain("nope");
    expect(program).not.toContain("secret-token-value");
    expect(workerProgram({ ...launch, maxReplyBytes: 5000 })).toContain('\\"maxReplyBytes\\":5000');
  });

  it("carries the attempt of a retry job, and leaves out the first (the worker's default)", () => {
    expect(launchSeenByPython(workerProgram({ ...launch, attempt: 3 }))).toEqual({
      ...launch,
      attempt: 3,
    });
    expect(launchSeenByPython(workerProgram({ ...launch, attempt: 1 }))).toEqual(launch);
  });

  it("carries claimTasks when true, and leaves out false (the worker's default)", () => {
    expect(launchSeenByPython(workerProgram({ ...launch, claimTasks: true }))).toEqual({
      ...launch,
      claimTasks: true,
    });
    expect(launchSeenByPython(workerProgram({ ...launch, claimTasks: false }))).toEqual(launch);
  });

  it("refuses unusable launch fields", () => {
    const bad: Partial<Record<keyof WorkerLaunch, unknown>>[] = [
      { url: "ftp://x" },
      { url: "http://x y" },
      { tokenFile: "" },
      { tokenFile: undefined },
      { tokenFile: "a\nb" },
      { tokenFile: "a\u0000b" },
      { maxReplyBytes: 0 },
      { maxReplyBytes: 1.5 },
      { request: 0 },
      { request: 1.5 },
      { pickleProtocol: 1 },
      { pickleProtocol: 6 },
      { retryWindowSeconds: -1 },
      { retryWindowSeconds: Number.NaN },
      { memoryLimitBytes: 0 },
      { taskOffset: -1 },
      { taskOffset: 2.5 },
      { attempt: 0 },
      { attempt: 1.5 },
      { attempt: "2" },
      { claimTasks: "true" },
      { claimTasks: 1 },
    ];
    for (const patch of bad) {
      expect(() => workerProgram({ ...launch, ...patch } as WorkerLaunch)).toThrow(
        /^\[sheepdog\] \[worker-py\] WorkerLaunch\./,
      );
    }
  });
});
