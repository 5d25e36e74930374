import { execFileSync } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import type {
  CreatedRequest,
  ReportFrame,
  Store,
  TaskHeader,
  WorkerLaunch,
} from "@sheepdog/contracts";
import {
  decodeSpoolFile,
  encodePack,
  encodeSpoolFile,
  hashToken,
  layoutOf,
  macKey,
  readPackedTask,
  reportWrites,
  SPOOL_FILE_PATTERN,
  storeReports,
  taskRange,
  WIRE_VERSION,
} from "@sheepdog/contracts";
import type { SheepdogServer } from "@sheepdog/server";
import { startServer } from "@sheepdog/server";
import { sqliteStore } from "@sheepdog/store-sqlite";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PYTHON, pyPickle, pyRepr, runPython } from "./__fixtures__/python.js";
import { writeTokenFile } from "./__fixtures__/token-file.js";
import { parseReportLines } from "./report-lines.js";
import { workerPath, workerProgram, workerSource } from "./worker-source.js";

const TOKEN = "the request's token, for these tests";
const key = macKey(hashToken(TOKEN));
const text = (value: string) => new TextEncoder().encode(value);
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sheepdog-staging-"));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `script` in real Python with sheepdog_worker importable; its stdout, parsed as JSON. */
function inWorker(script: string, input: unknown): unknown {
  const program = [
    "import base64, json, sys",
    "sys.path.insert(0, sys.argv[1])",
    "import sheepdog_worker as w",
    script,
  ].join("\n");
  const out = execFileSync(PYTHON, ["-c", program, dirname(workerPath)], {
    input: JSON.stringify(input),
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" },
  });
  return JSON.parse(out.toString());
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

/** A copy of `bytes` with one bit changed, `fromEnd` bytes before the end. */
function flipped(bytes: Uint8Array, fromEnd: number): Uint8Array {
  const copy = bytes.slice();
  const at = copy.byteLength - fromEnd;
  copy[at] = (copy[at] as number) ^ 1;
  return copy;
}

describe("a pack made by encodePack", () => {
  const header = (task: number, first: number, count: number, indices?: number[]): TaskHeader => ({
    version: WIRE_VERSION,
    request: 7,
    task,
    first,
    count,
    ...(indices && { indices }),
  });
  const [a, b, c] = pyPickle(["(1,)", "(2,)", "('three',)"]) as [
    Uint8Array,
    Uint8Array,
    Uint8Array,
  ];
  // A retry job's pack: its tasks are the request's tasks 3 and 4.
  const pack = encodePack(key, {
    request: 7,
    taskOffset: 2,
    func: text('{"name":"f","source":"def f(x):\\n    return x\\n"}'),
    ns: pyPickle(["{'k': 1}"])[0] as Uint8Array,
    tasks: [
      { header: header(3, 4, 2), args: [a, b] },
      { header: header(4, 1, 2, [1, 9]), args: [c, a] },
    ],
  });
  const readByWorker = (bytes: Uint8Array, tasks: number[]) => {
    const path = join(dir, `pack-${tasks.join("-")}-${bytes.byteLength}.pack`);
    writeFileSync(path, bytes, { mode: 0o600 });
    const tokenFile = writeTokenFile(dir, "pack-reader", TOKEN);
    const script = [
      "job = json.load(sys.stdin)",
      "key = w.read_key(job['tokenFile'])",
      "out = []",
      "for task in job['tasks']:",
      "    try:",
      "        indices, func, ns, args = w.read_staged_task(job['pack'], key, 7, task)",
      "        b = lambda v: base64.b64encode(bytes(v)).decode()",
      "        out.append({'indices': indices, 'func': b(func), 'ns': b(ns), 'args': [b(x) for x in args]})",
      "    except w.Unstaged as why:",
      "        out.append({'refused': str(why)})",
      "print(json.dumps(out))",
    ].join("\n");
    return inWorker(script, { pack: path, tokenFile, tasks }) as Record<string, unknown>[];
  };

  it("gives the worker each task as readPackedTask gives it", () => {
    const seen = readByWorker(pack, [3, 4]);
    for (const [i, task] of [3, 4].entries()) {
      const expected = readPackedTask(key, pack, 7, task);
      expect(seen[i]).toEqual({
        indices: expected.header.indices ?? [4, 5],
        func: b64(expected.func),
        ns: b64(expected.ns),
        args: expected.args.map(b64),
      });
    }
  });

  it("is refused by the worker when it lacks the task, a byte changed or the key is not the request's", () => {
    expect(readByWorker(pack, [2, 5])).toEqual([
      { refused: "it has no task 2" },
      { refused: "it has no task 5" },
    ]);
    expect(readByWorker(flipped(pack, 2), [3, 4])[1]).toEqual({
      refused: "its task 4 is not signed with request 7's key",
    });
    const forged = encodePack(macKey(hashToken("another token")), {
      request: 7,
      taskOffset: 2,
      func: text("{}"),
      ns: new Uint8Array(),
      tasks: [{ header: header(3, 4, 1), args: [a] }],
    });
    expect(readByWorker(forged, [3])).toEqual([
      { refused: "its common is not signed with request 7's key" },
    ]);
  });
});

describe("a spool file written by the worker", () => {
  const reports: ReportFrame[] = [
    { index: 4, kind: "result", payload: pyPickle(["{'x': 1}"])[0] as Uint8Array },
    {
      index: 5,
      kind: "error",
      payload: text("Traceback (most recent call last):\n  ValueError\n"),
    },
  ];

  function spoolByWorker(token: string): { name: string; bytes: Uint8Array; path: string } {
    const spoolDir = join(dir, `spool-${token.length}`);
    const script = [
      "job = json.load(sys.stdin)",
      "key = w.read_key(job['tokenFile'])",
      "reports = [(r['index'], r['kind'], base64.b64decode(r['payload']), None, None) for r in job['reports']]",
      "spool = w.Spool(job['dir'], key, 7, 2)",
      "print(json.dumps(spool.write(w.encode_reports(reports), len(reports))))",
    ].join("\n");
    const path = inWorker(script, {
      dir: spoolDir,
      tokenFile: writeTokenFile(dir, `spool-writer-${token.length}`, token),
      reports: reports.map((r) => ({ ...r, payload: b64(r.payload) })),
    }) as string;
    return { name: basename(path), bytes: new Uint8Array(readFileSync(path)), path };
  }

  it("is accepted by decodeSpoolFile, and its reports by reportWrites", () => {
    const { name, bytes, path } = spoolByWorker(TOKEN);
    expect(name).toMatch(SPOOL_FILE_PATTERN);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(path)).mode & 0o777).toBe(0o700);
    expect(readdirSync(dirname(path))).toEqual([name]);
    const spooled = decodeSpoolFile(key, 7, name, bytes);
    expect(spooled.task).toBe(2);
    expect(reportWrites(spooled.reports, { first: 4, count: 2 })).toEqual([
      { index: 4, kind: "result", value: reports[0]?.payload },
      { index: 5, kind: "error", value: "Traceback (most recent call last):\n  ValueError\n" },
    ]);
    // Byte for byte what encodeSpoolFile makes with the same nonce.
    const nonce = SPOOL_FILE_PATTERN.exec(name)?.[2];
    const encoded = encodeSpoolFile(key, { request: 7, task: 2, reports, nonce });
    expect({ ...encoded, bytes: new Uint8Array(encoded.bytes) }).toEqual({ name, bytes });
  });

  it("is refused under another request's key", () => {
    const { name, bytes } = spoolByWorker("another request's token");
    expect(() => decodeSpoolFile(key, 7, name, bytes)).toThrow("not signed with request 7's key");
  });
});

describe("workerProgram's staging settings", () => {
  const launch: WorkerLaunch = {
    url: "http://head.example:8123",
    tokenFile: ".sheepdog/sheepdog_7_ab12.token",
    request: 7,
    pickleProtocol: 4,
    retryWindowSeconds: 600,
  };

  it("carries stagedTasks, spoolDir and spoolAfterSeconds to the worker", () => {
    const program = workerProgram({
      ...launch,
      stagedTasks: ".sheepdog/sheepdog_7_ab12.d/tasks-0.pack",
      spoolDir: ".sheepdog/sheepdog_7_ab12.d/spool",
      spoolAfterSeconds: 2.5,
    });
    expect(program).toContain(
      '\\"stagedTasks\\":\\".sheepdog/sheepdog_7_ab12.d/tasks-0.pack\\",\\"spoolDir\\":\\".sheepdog/sheepdog_7_ab12.d/spool\\",\\"spoolAfterSeconds\\":2.5}',
    );
    expect(workerProgram(launch).slice(workerSource().length)).not.toContain("spool");
  });

  it("refuses unusable ones, naming them", () => {
    const bad: [Partial<Record<keyof WorkerLaunch, unknown>>, string][] = [
      [{ stagedTasks: "" }, "stagedTasks"],
      [{ stagedTasks: "a\nb" }, "stagedTasks"],
      [{ stagedTasks: 3 }, "stagedTasks"],
      [{ spoolDir: "a\u0000b" }, "spoolDir"],
      [{ spoolDir: "" }, "spoolDir"],
      [{ spoolAfterSeconds: -1 }, "spoolAfterSeconds"],
      [{ spoolAfterSeconds: Number.POSITIVE_INFINITY }, "spoolAfterSeconds"],
      [{ spoolAfterSeconds: "15" }, "spoolAfterSeconds"],
    ];
    for (const [patch, field] of bad) {
      expect(() => workerProgram({ ...launch, ...patch } as WorkerLaunch)).toThrow(
        `[sheepdog] [worker-py] WorkerLaunch.${field} must be`,
      );
    }
  });
});

describe("a detached request's worker against the real server", () => {
  let store: Store;
  let server: SheepdogServer;
  let databases = 0;

  beforeEach(async () => {
    databases += 1;
    store = sqliteStore({ dbfile: join(dir, `sheepdog-${databases}.sqlite`) });
    server = await startServer({ store, port: 0, host: "127.0.0.1" });
  });

  afterEach(async () => {
    await server.close();
    await store.close();
  });

  async function newRequest(source: string, args: string[], chunkSize: number) {
    return store.createRequest({
      func: text(JSON.stringify({ name: "f", source })),
      ns: new Uint8Array(),
      args: pyPickle(args),
      meta: { chunkSize },
    });
  }

  /** Stages every task of the request as core does: a pack under the request's key. */
  async function stage(
    request: CreatedRequest,
    name: string,
  ): Promise<{ pack: string; spoolDir: string }> {
    const info = await store.getRequest(request.id);
    const layout = layoutOf(info.meta, info.tasks);
    const tasks: { header: TaskHeader; args: Uint8Array[] }[] = [];
    for (let task = 1; taskRange(layout, task) !== undefined; task++) {
      const { first, count } = taskRange(layout, task) as { first: number; count: number };
      const header: TaskHeader = { version: WIRE_VERSION, request: request.id, task, first, count };
      tasks.push({ header, args: await store.getArgs(request.id, first, count) });
    }
    const staged = join(dir, `${name}.d`);
    const spoolDir = join(staged, "spool");
    mkdirSync(spoolDir, { recursive: true, mode: 0o700 });
    const pack = join(staged, "tasks-0.pack");
    const bytes = encodePack(macKey(info.tokenHash), {
      request: request.id,
      taskOffset: 0,
      func: info.func,
      ns: info.ns,
      tasks,
    });
    writeFileSync(pack, bytes, { mode: 0o600 });
    return { pack, spoolDir };
  }

  function runWorker(request: CreatedRequest, task: number, patch: Partial<WorkerLaunch>) {
    const name = `sheepdog_${request.id}_${task}_${databases}`;
    const launch: WorkerLaunch = {
      url: server.url,
      tokenFile: writeTokenFile(dir, name, request.token),
      request: request.id,
      pickleProtocol: 4,
      retryWindowSeconds: 600,
      firstContactSeconds: 60,
      ...patch,
    };
    const file = join(dir, `${name}.py`);
    writeFileSync(file, workerProgram(launch), { mode: 0o600 });
    return runPython(file, { SHEEPDOG_TASK_ID: String(task) });
  }

  /** A URL where nothing listens: a port the system gave and took back. */
  async function closedUrl(): Promise<string> {
    const probe = createNetServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    return `http://127.0.0.1:${port}`;
  }

  /** Spies on the store's argument reads: a task fetched from the server reads its arguments. */
  function countArgReads(): () => number {
    let reads = 0;
    const getArgs = store.getArgs.bind(store);
    store.getArgs = async (...args) => {
      reads += 1;
      return getArgs(...args);
    };
    return () => reads;
  }

  it("runs its task from the pack with no server, spools its reports at once and exits 0", async () => {
    const request = await newRequest("def f(x):\n    return x * 10\n", ["(1,)", "(2,)", "(3,)"], 2);
    const { pack, spoolDir } = await stage(request, "offline");
    const url = await closedUrl();
    const started = Date.now();
    const runs = await Promise.all(
      [1, 2].map((task) =>
        runWorker(request, task, { url, stagedTasks: pack, spoolDir, spoolAfterSeconds: 20 }),
      ),
    );
    const elapsed = Date.now() - started;
    for (const run of runs) expect(run.code).toBe(0);
    // Nothing listens on the port: spooled at once, not after spoolAfterSeconds (20), nor the
    // launch's firstContactSeconds (60) or retry window (600).
    expect(elapsed).toBeLessThan(8_000);
    expect(runs[0]?.stderr).not.toContain("fetch");
    expect(runs[0]?.stderr).toContain("Cannot report to the server: nothing answers at");
    expect(runs[0]?.stderr).toContain(
      `2 of 2 reports of task 1 are in 1 spool files in ${spoolDir}`,
    );
    // The reports are still on stdout, too.
    expect(parseReportLines(runs[1]?.stdout ?? "").map((line) => line.index)).toEqual([2]);
    const names = readdirSync(spoolDir).sort();
    expect(names).toHaveLength(2);
    const layout = layoutOf({ chunkSize: 2 }, 3);
    const requestKey = macKey(hashToken(request.token));
    for (const name of names) {
      expect(name).toMatch(SPOOL_FILE_PATTERN);
      const bytes = new Uint8Array(readFileSync(join(spoolDir, name)));
      const spooled = decodeSpoolFile(requestKey, request.id, name, bytes);
      const range = taskRange(layout, spooled.task);
      if (range === undefined) throw new Error(`${name} names a task the request lacks.`);
      await storeReports(store, request.id, reportWrites(spooled.reports, range));
    }
    const results = (await store.getResults(request.id)).map((r) => r.result);
    expect(pyRepr(results)).toEqual(["10", "20", "30"]);
  }, 30_000);

  it("posts to the server when it is up: the task from the pack, no spool file", async () => {
    const request = await newRequest("def f(x):\n    return x + 1\n", ["(1,)", "(2,)", "(3,)"], 2);
    const { pack, spoolDir } = await stage(request, "online");
    const argReads = countArgReads();
    const runs = await Promise.all(
      [1, 2].map((task) =>
        runWorker(request, task, { stagedTasks: pack, spoolDir, spoolAfterSeconds: 2 }),
      ),
    );
    for (const run of runs) {
      expect(run.stderr).toBe("");
      expect(run.code).toBe(0);
    }
    const results = (await store.getResults(request.id)).map((r) => r.result);
    expect(pyRepr(results)).toEqual(["2", "3", "4"]);
    expect(argReads()).toBe(0);
    expect(readdirSync(spoolDir)).toEqual([]);
  }, 30_000);

  it("fetches its task from the server, saying why, when the pack is not the request's", async () => {
    const request = await newRequest("def f(x):\n    return -x\n", ["(5,)"], 1);
    const { pack, spoolDir } = await stage(request, "tampered");
    writeFileSync(pack, flipped(readFileSync(pack), 3));
    const argReads = countArgReads();
    const run = await runWorker(request, 1, { stagedTasks: pack, spoolDir });
    expect(run.code).toBe(0);
    expect(run.stderr).toBe(
      `[sheepdog] [worker] Cannot take task 1 from the staged tasks ${pack}: its task 1 is not signed with request ${request.id}'s key. Fetching it from the server.\n`,
    );
    expect(argReads()).toBe(1);
    expect(pyRepr((await store.getResults(request.id)).map((r) => r.result))).toEqual(["-5"]);
  }, 30_000);
});
