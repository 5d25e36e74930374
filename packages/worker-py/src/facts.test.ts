import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import type { CreatedRequest, WorkerLaunch } from "@sheepdog/contracts";
import { MAX_LOG_BYTES, tailOfLog } from "@sheepdog/contracts";
import type { SheepdogServer } from "@sheepdog/server";
import { startServer } from "@sheepdog/server";
import type { SqliteStore } from "@sheepdog/store-sqlite";
import { sqliteStore } from "@sheepdog/store-sqlite";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { pyPickle, runPython } from "./__fixtures__/python.js";
import { writeTokenFile } from "./__fixtures__/token-file.js";
import { parseReportLines } from "./report-lines.js";
import { workerProgram } from "./worker-source.js";

// What the worker tells of each call (TaskFacts), through the real server into a real SQLite
// store: times, host, peak memory, attempt and the tail of what the call printed.

let dir: string;
let store: SqliteStore;
let server: SheepdogServer;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sheepdog-facts-"));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  store = sqliteStore({ dbfile: join(dir, `facts-${Date.now()}-${Math.random()}.sqlite`) });
  server = await startServer({ store, port: 0, host: "127.0.0.1" });
});

afterEach(async () => {
  await server.close();
  await store.close();
});

async function newRequest(source: string, args: string[]): Promise<CreatedRequest> {
  return store.createRequest({
    func: new TextEncoder().encode(JSON.stringify({ name: "f", source })),
    ns: new Uint8Array(),
    args: pyPickle(args),
    meta: {},
  });
}

let programs = 0;
/** Runs task `task` of `request` as a job would, with `patch` on the launch core makes. */
function runWorker(request: CreatedRequest, task: number, patch: Partial<WorkerLaunch> = {}) {
  programs += 1;
  const launch: WorkerLaunch = {
    url: server.url,
    tokenFile: writeTokenFile(dir, `sheepdog_${request.id}_${programs}`, request.token),
    request: request.id,
    pickleProtocol: 4,
    retryWindowSeconds: 30,
    ...patch,
  };
  const file = join(dir, `sheepdog_${programs}.py`);
  writeFileSync(file, workerProgram(launch), { mode: 0o600 });
  return runPython(file, { SHEEPDOG_TASK_ID: String(task) });
}

const utf8Size = (text: string) => new TextEncoder().encode(text).byteLength;

const PRINTING = [
  "import sys, time",
  "def f(n):",
  "    if n == 0:",
  "        print('hello from', n, '\\u00e9\\U0001f600')",
  "        sys.stderr.write('warning %d\\t\\x01\\n' % n)",
  "        time.sleep(0.05)",
  "    elif n == 1:",
  "        print('x' * 200000)",
  "    return n",
  "",
].join("\n");

describe("the facts of each call, in the store", () => {
  it("has each call's times, host, peak memory, attempt and printed text", async () => {
    const request = await newRequest(PRINTING, ["(0,)", "(1,)", "(2,)"]);
    const before = Date.now();
    const runs = await Promise.all(
      [1, 2, 3].map((task) => runWorker(request, task, { attempt: 2 })),
    );
    const after = Date.now();
    expect(runs.map((run) => [run.code, run.stderr])).toEqual([
      [0, "warning 0\t\u0001\n"],
      [0, ""],
      [0, ""],
    ]);
    // What the calls print still reaches the job's output, before the report lines.
    expect(runs[0]?.stdout).toMatch(/^hello from 0 é😀\nSHEEPDOG-REPORT v1 /);
    expect(runs.map((run) => parseReportLines(run.stdout).map((l) => l.index))).toEqual([
      [0],
      [1],
      [2],
    ]);

    const facts = await store.getTaskFacts(request.id);
    expect(facts.map((f) => [f?.kind, f?.host, f?.attempt, f?.hasLog])).toEqual([
      ["result", hostname(), 2, true],
      ["result", hostname(), 2, true],
      ["result", hostname(), 2, false],
    ]);
    for (const fact of facts) {
      const { startedAt = -1, endedAt = -1, peakMemoryBytes = 0 } = fact ?? {};
      expect(startedAt).toBeGreaterThanOrEqual(before - 1);
      expect(endedAt).toBeGreaterThanOrEqual(startedAt);
      expect(endedAt).toBeLessThanOrEqual(after);
      expect(peakMemoryBytes).toBeGreaterThan(1024 * 1024);
    }
    const first = facts[0];
    expect((first?.endedAt ?? 0) - (first?.startedAt ?? 0)).toBeGreaterThanOrEqual(49);

    const logs = await store.getLogs(request.id);
    expect(logs.map((l) => l.index)).toEqual([0, 1]);
    expect(logs[0]?.log).toBe("hello from 0 é😀\nwarning 0\t\u0001\n");
    const cut = logs[1]?.log ?? "";
    expect(cut).toBe(tailOfLog(`${"x".repeat(200_000)}\n`));
    expect(cut).toMatch(/^\[sheepdog: \d+ bytes cut\]\nx+\n$/);
    expect(utf8Size(cut)).toBeLessThanOrEqual(MAX_LOG_BYTES);
  });

  it("tells where a function that cannot be set up failed, on its first attempt", async () => {
    const request = await newRequest("raise RuntimeError('no setup')\n", ["(0,)", "(1,)"]);
    const runs = await Promise.all([1, 2].map((task) => runWorker(request, task)));
    expect(runs.map((run) => [run.code, run.stderr])).toEqual([
      [0, ""],
      [0, ""],
    ]);
    expect(await store.getTaskFacts(request.id)).toEqual([
      { kind: "error", host: hostname(), attempt: 1, hasLog: false },
      { kind: "error", host: hostname(), attempt: 1, hasLog: false },
    ]);
    const errors = await store.getErrors(request.id);
    expect(errors.map((e) => e.error)).toEqual([
      expect.stringContaining("RuntimeError: no setup"),
      expect.stringContaining("RuntimeError: no setup"),
    ]);
  });
});
