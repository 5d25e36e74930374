import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { TaskLayout } from "@sheepdog/contracts";
import { layoutOf, retryChunks, taskCount, taskIndices } from "@sheepdog/contracts";
import type { MemoryStore } from "@sheepdog/contracts/testing";
import { memoryStore } from "@sheepdog/contracts/testing";
import type { SheepdogServer } from "@sheepdog/server";
import { startServer } from "@sheepdog/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runPython } from "./__fixtures__/python.js";
import { writeTokenFile } from "./__fixtures__/token-file.js";
import { parseReportLines } from "./report-lines.js";
import { workerPath } from "./worker-source.js";

/**
 * The Python worker computes no layout of its own: the server's task header says which
 * arguments a task covers (`first` and `count`, or a retry task's `indices`). What it does
 * compute is its request task number (the scheduler's task number plus the launch's
 * `taskOffset`) and the list of indices from the header. This test runs the real worker code
 * (its `main`, in one Python process) against the real server for layouts made with the
 * contracts' functions, and checks that every job's every task reports exactly the arguments
 * `taskIndices` gives.
 */

/** One array job of a request: its tasks are the request's tasks `taskOffset + 1 ..`. */
interface Job {
  taskOffset: number;
  tasks: number;
}

interface LayoutCase {
  tasks: number;
  chunkSize: number;
  /** The arguments each retry runs again, and the chunk size of that retry. */
  retries: { failed: number[]; chunkSize: number }[];
}

const cases: LayoutCase[] = [
  { tasks: 1, chunkSize: 1, retries: [] },
  { tasks: 12, chunkSize: 4, retries: [] },
  {
    tasks: 7,
    chunkSize: 3,
    retries: [
      { failed: [6, 1, 4], chunkSize: 2 },
      { failed: [4], chunkSize: 1 },
    ],
  },
  { tasks: 10, chunkSize: 1, retries: [{ failed: [9, 0, 2, 3, 4], chunkSize: 3 }] },
  { tasks: 5, chunkSize: 9, retries: [{ failed: [0, 1, 2, 3, 4], chunkSize: 1 }] },
  {
    tasks: 23,
    chunkSize: 5,
    retries: [
      { failed: [3, 4, 5, 6, 7, 20, 22], chunkSize: 5 },
      { failed: [22, 5], chunkSize: 5 },
      { failed: [0, 1, 2, 10, 11, 12, 13], chunkSize: 4 },
    ],
  },
];

/** The layout after every retry, and the jobs that run it (the first, then one per retry). */
function plan(layoutCase: LayoutCase): { layout: TaskLayout; jobs: Job[] } {
  let layout: TaskLayout = {
    tasks: layoutCase.tasks,
    chunkSize: layoutCase.chunkSize,
    retryTasks: [],
  };
  const jobs: Job[] = [{ taskOffset: 0, tasks: taskCount(layout) }];
  for (const retry of layoutCase.retries) {
    const chunks = retryChunks(retry.failed, retry.chunkSize);
    jobs.push({ taskOffset: taskCount(layout), tasks: chunks.length });
    layout = { ...layout, retryTasks: [...layout.retryTasks, ...chunks] };
  }
  return { layout, jobs };
}

/** What the driver runs: one `main(launch, environ)` of the worker, with its stdout. */
interface WorkerCall {
  launch: Record<string, unknown>;
  environ: Record<string, string>;
}

/** What one call of `main` did: its exit code, its stdout, and the request tasks it ran. */
interface CallOutcome {
  code: number;
  stdout: string;
  tasks: number[];
}

/**
 * Runs every call through the worker's `main` in one Python process (its `run_task` wrapped to
 * record the request task number `main` computed).
 */
async function runCalls(calls: WorkerCall[]): Promise<CallOutcome[]> {
  const driver = [
    "import io, json, sys",
    "sys.path.insert(0, sys.argv[1])",
    "import sheepdog_worker as w",
    "fetched = []",
    "run_task = w.run_task",
    "def recording_run_task(settings, key, task, stdout, connection=None):",
    "    fetched.append(task)",
    "    return run_task(settings, key, task, stdout, connection)",
    "w.run_task = recording_run_task",
    "out = []",
    "real = sys.stdout",
    "for call in json.load(sys.stdin):",
    "    sys.stdout = io.StringIO()",
    "    del fetched[:]",
    "    try:",
    "        code = w.main(call['launch'], call['environ'])",
    "        text = sys.stdout.getvalue()",
    "    finally:",
    "        sys.stdout = real",
    "    out.append({'code': code, 'stdout': text, 'tasks': list(fetched)})",
    "print(json.dumps(out))",
  ].join("\n");
  const run = await runPython(
    ["-c", driver, dirname(workerPath)],
    { PYTHONDONTWRITEBYTECODE: "1" },
    { input: JSON.stringify(calls), timeoutMs: 120_000 },
  );
  if (run.code !== 0) throw new Error(`The driver exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as CallOutcome[];
}

/** The variables a scheduler gives the task number in; each call uses one in turn. */
const TASK_VARIABLES = [
  "SHEEPDOG_TASK_ID",
  "SGE_TASK_ID",
  "SLURM_ARRAY_TASK_ID",
  "PBS_ARRAY_INDEX",
];
/** A pickle (protocol 2) of the empty tuple: every task calls `f()`. */
const EMPTY_TUPLE = new Uint8Array([0x80, 0x02, 0x29, 0x2e]);
const FUNC = new TextEncoder().encode(
  JSON.stringify({ name: "f", source: "def f():\n    return None\n" }),
);

let store: MemoryStore;
let server: SheepdogServer;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "sheepdog-layout-"));
  store = memoryStore();
  server = await startServer({ store, port: 0, host: "127.0.0.1" });
});

afterAll(async () => {
  await server.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the worker's task layout, against @sheepdog/contracts", () => {
  it("reports, for every task of every job, the indices taskIndices gives", async () => {
    const calls: WorkerCall[] = [];
    const expected: { requestTask: number; indices: readonly number[] }[] = [];
    for (const layoutCase of cases) {
      const { layout, jobs } = plan(layoutCase);
      const meta = { chunkSize: layout.chunkSize, retryTasks: layout.retryTasks };
      const request = await store.createRequest({
        func: FUNC,
        ns: new Uint8Array(),
        args: Array.from({ length: layout.tasks }, () => EMPTY_TUPLE),
        meta,
      });
      // The meta as stored describes the same layout.
      expect(layoutOf((await store.getRequest(request.id)).meta, layout.tasks)).toEqual(layout);
      for (const job of jobs) {
        for (let task = 1; task <= job.tasks; task++) {
          const variable = TASK_VARIABLES[calls.length % TASK_VARIABLES.length] as string;
          calls.push({
            launch: {
              url: server.url,
              tokenFile: writeTokenFile(dir, `layout-${request.id}`, request.token),
              request: request.id,
              pickleProtocol: 4,
              retryWindowSeconds: 5,
              ...(job.taskOffset > 0 && { taskOffset: job.taskOffset }),
            },
            environ: { [variable]: String(task) },
          });
          expected.push({
            requestTask: job.taskOffset + task,
            indices: taskIndices(layout, job.taskOffset + task),
          });
        }
      }
    }
    const runs = await runCalls(calls);
    expect(runs.map((run) => run.code)).toEqual(calls.map(() => 0));
    const reported = runs.map((run) => ({
      requestTasks: run.tasks,
      indices: parseReportLines(run.stdout).map((line) => line.index),
    }));
    expect(reported).toEqual(
      expected.map((e) => ({ requestTasks: [e.requestTask], indices: [...e.indices] })),
    );
    // Retry tasks exist in every case with retries, so both kinds of header were read.
    expect(
      expected.some((e) => e.indices.length > 1 && e.indices[1] !== (e.indices[0] as number) + 1),
    ).toBe(true);
  }, 120_000);
});
