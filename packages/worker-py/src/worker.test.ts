import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect as connectTcp, createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CreatedRequest, Store, WorkerLaunch } from "@sheepdog/contracts";
import type { ReportEvent, SheepdogServer } from "@sheepdog/server";
import { startServer } from "@sheepdog/server";
import { sqliteStore } from "@sheepdog/store-sqlite";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Run } from "./__fixtures__/python.js";
import { pyPickle, pyRepr, runPython } from "./__fixtures__/python.js";
import { writeTokenFile } from "./__fixtures__/token-file.js";
import { parseReportLines } from "./report-lines.js";
import { workerProgram, workerSource } from "./worker-source.js";

const NS_FUNCTION = "__sheepdog_function__";
let dir: string;
let store: Store;
let server: SheepdogServer;
let events: ReportEvent[];

function func(source: string, name = "f"): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ name, source }));
}

async function newRequest(
  source: string,
  args: string[],
  options: { ns?: string; chunkSize?: number; protocol?: number } = {},
): Promise<CreatedRequest> {
  return store.createRequest({
    func: func(source),
    ns: options.ns === undefined ? new Uint8Array() : (pyPickle([options.ns])[0] as Uint8Array),
    args: pyPickle(args, options.protocol ?? 4),
    meta: options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize },
  });
}

let tokenFiles = 0;
/** The launch core makes for a request: its token in a file of its own (0600, in a 0700 dir). */
function launchFor(
  request: CreatedRequest,
  patch: Partial<WorkerLaunch> = {},
  token = request.token,
): WorkerLaunch {
  tokenFiles += 1;
  return {
    url: server.url,
    tokenFile: writeTokenFile(dir, `sheepdog_${request.id}_${tokenFiles}`, token),
    request: request.id,
    pickleProtocol: 4,
    retryWindowSeconds: 30,
    ...patch,
  };
}

let programs = 0;
function runWorker(
  launch: WorkerLaunch,
  task: number,
  onStderr?: (text: string) => void,
  timeoutMs?: number,
) {
  programs += 1;
  const file = join(dir, `sheepdog_${programs}.py`);
  writeFileSync(file, workerProgram(launch), { mode: 0o600 });
  return runPython(file, { SHEEPDOG_TASK_ID: String(task) }, { onStderr, timeoutMs });
}

async function results(id: number): Promise<(string | null)[]> {
  return pyRepr((await store.getResults(id)).map((r) => r.result));
}

function expectClean(run: Run): void {
  expect(run.stderr).toBe("");
  expect(run.code).toBe(0);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sheepdog-worker-"));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let databases = 0;
let dbfile: string;
/** Stores opened on the same file during a test, as a restarted server would. */
let reopened: Store[] = [];
beforeEach(async () => {
  databases += 1;
  dbfile = join(dir, `sheepdog-${databases}.sqlite`);
  store = sqliteStore({ dbfile });
  events = [];
  server = await startServer({
    store,
    port: 0,
    host: "127.0.0.1",
    onReport: (event) => events.push(event),
  });
});

afterEach(async () => {
  await server.close();
  await store.close();
  for (const other of reopened) await other.close();
  reopened = [];
});

/** A new server on `port` over a new store on the same dbfile, as `sheepdog serve` would be. */
async function restartServer(port: number): Promise<void> {
  const fresh = sqliteStore({ dbfile });
  reopened.push(fresh);
  server = await startServer({ store: fresh, port, host: "127.0.0.1" });
}

describe("the worker against the real server", () => {
  it("runs the original's synchronous map: results in order, stdout lines that match", async () => {
    const request = await newRequest("def f(a, b):\n    return a + b\n", [
      "(1, 1)",
      "(1, 2)",
      "(2, 2)",
    ]);
    const runs = await Promise.all([1, 2, 3].map((task) => runWorker(launchFor(request), task)));
    for (const run of runs) expectClean(run);
    expect(await results(request.id)).toEqual(["2", "3", "4"]);
    expect(events.map((e) => e.index).sort()).toEqual([0, 1, 2]);
    const stored = await store.getResults(request.id);
    for (const [task, run] of runs.entries()) {
      const lines = parseReportLines(run.stdout);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ request: request.id, index: task, kind: "result" });
      expect(lines[0]?.payload).toEqual(stored[task]?.result);
    }
  });

  it("reports errors with the full traceback, per argument, and exits 0", async () => {
    const request = await newRequest(
      "def f(x):\n    return helper(x)\n\ndef helper(x):\n    return 10 // x\n",
      ["(5,)", "(0,)", "(2,)"],
      { chunkSize: 3 },
    );
    const run = await runWorker(launchFor(request), 1);
    expectClean(run);
    expect(await results(request.id)).toEqual(["2", null, "5"]);
    const errors = await store.getErrors(request.id);
    expect(errors.map((e) => e.index)).toEqual([1]);
    const text = errors[0]?.error ?? "";
    expect(text).toMatch(/^Traceback \(most recent call last\):\n/);
    expect(text).toContain('File "<sheepdog function f>", line 2, in f');
    expect(text).toContain('File "<sheepdog function f>", line 5, in helper');
    expect(text).toContain("return 10 // x");
    expect(text.trimEnd().endsWith("ZeroDivisionError: integer division or modulo by zero")).toBe(
      true,
    );
    const lines = parseReportLines(run.stdout);
    expect(lines.map((l) => l.kind)).toEqual(["result", "error", "result"]);
    expect(new TextDecoder().decode(lines[1]?.payload)).toBe(text);
  });

  it("runs the original's namespaces example: values and py functions", async () => {
    const ns = `{"constant": 12, "g": {"${NS_FUNCTION}": {"name": "g", "source": "def g(x):\\n    return x * 2\\n"}}}`;
    const request = await newRequest(
      "def f(a, b):\n    return a + g(b) + constant\n",
      ["(1, 2)", "(2, 3)", "(3, 4)"],
      { ns, chunkSize: 2 },
    );
    const runs = await Promise.all([1, 2].map((task) => runWorker(launchFor(request), task)));
    for (const run of runs) expectClean(run);
    expect(await results(request.id)).toEqual(["17", "20", "23"]);
  });

  it("runs the original's imports example: a global import shared with ns functions", async () => {
    const ns = `{"g": {"${NS_FUNCTION}": {"name": "g", "source": "def g(x):\\n    return statistics.mean(x)\\n"}}}`;
    const request = await newRequest(
      "def f(x):\n    import statistics\n    global statistics\n    return g(x)\n",
      ["([1, 2, 3],)"],
      { ns },
    );
    expectClean(await runWorker(launchFor(request), 1));
    expect(await results(request.id)).toEqual(["2"]);
  });

  it("covers every argument of a chunked request, each task its own range", async () => {
    const args = Array.from({ length: 7 }, (_, i) => `(${i},)`);
    const request = await newRequest("def f(x):\n    return x * x\n", args, { chunkSize: 3 });
    const runs = await Promise.all([1, 2, 3].map((task) => runWorker(launchFor(request), task)));
    for (const run of runs) expectClean(run);
    expect(await results(request.id)).toEqual(["0", "1", "4", "9", "16", "25", "36"]);
    expect(parseReportLines(runs[2]?.stdout ?? "").map((l) => l.index)).toEqual([6]);
    // A task beyond the last is refused, and says so.
    const beyond = await runWorker(launchFor(request), 4);
    expect(beyond.code).toBe(3);
    expect(beyond.stderr).toContain("HTTP 404");
  });

  it("runs a retry job's task: taskOffset reaches the request's retry task and its indices", async () => {
    const args = Array.from({ length: 5 }, (_, i) => `(${i},)`);
    const request = await newRequest("def f(x):\n    return x + 10\n", args, { chunkSize: 2 });
    // Chunks are tasks 1-3; the retry job's tasks 1 and 2 are the request's tasks 4 and 5.
    await store.updateMeta(request.id, { retryTasks: [[1, 4], [3]] });
    const runs = await Promise.all(
      [1, 2].map((task) => runWorker(launchFor(request, { taskOffset: 3 }), task)),
    );
    for (const run of runs) expectClean(run);
    expect(await results(request.id)).toEqual([null, "11", null, "13", "14"]);
    expect(parseReportLines(runs[0]?.stdout ?? "").map((l) => l.index)).toEqual([1, 4]);
  });

  it("pickles results with the configured protocol, and refuses what cannot be pickled", async () => {
    const request = await newRequest(
      "import threading\ndef f(x):\n    return threading.Lock() if x else {'a': (1, 2.5)}\n",
      ["(0,)", "(1,)"],
      { chunkSize: 2, protocol: 2 },
    );
    expectClean(await runWorker(launchFor(request, { pickleProtocol: 2 }), 1));
    const stored = await store.getResults(request.id);
    expect([...(stored[0]?.result ?? []).slice(0, 2)]).toEqual([0x80, 2]);
    expect(await results(request.id)).toEqual(["{'a': (1, 2.5)}", null]);
    const [error] = await store.getErrors(request.id);
    expect(error?.error).toContain("The result could not be pickled (protocol 2):");
    expect(error?.error).toContain("TypeError");
  });

  it("applies memoryLimitBytes: a function that allocates too much gets a MemoryError", async () => {
    const request = await newRequest(
      "def f(mib):\n    block = bytearray(mib * 1024 * 1024)\n    return len(block) // (1024 * 1024)\n",
      ["(16,)", "(2048,)", "(32,)"],
      { chunkSize: 3 },
    );
    const run = await runWorker(launchFor(request, { memoryLimitBytes: 512 * 1024 * 1024 }), 1);
    expectClean(run);
    expect(await results(request.id)).toEqual(["16", null, "32"]);
    const [error] = await store.getErrors(request.id);
    expect(error?.index).toBe(1);
    expect(error?.error).toContain("block = bytearray(mib * 1024 * 1024)");
    expect(error?.error.trimEnd().endsWith("MemoryError")).toBe(true);
  });

  it("sets both the soft and the hard memory limit, as the original did, for the whole task", async () => {
    const bytes = 512 * 1024 * 1024;
    const request = await newRequest(
      "import resource\n" +
        "def f(x):\n" +
        "    before = resource.getrlimit(resource.RLIMIT_AS)\n" +
        "    try:\n" +
        "        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)\n" +
        "    except ValueError:\n" +
        "        pass\n" +
        "    return before, resource.getrlimit(resource.RLIMIT_AS)\n",
      ["(1,)", "(2,)"],
      { chunkSize: 2 },
    );
    expectClean(await runWorker(launchFor(request, { memoryLimitBytes: bytes }), 1));
    const limits = `((${bytes}, ${bytes}), (${bytes}, ${bytes}))`;
    expect(await results(request.id)).toEqual([limits, limits]);
  });

  it("delivers every report under a small hard limit, which a new thread would not fit in", async () => {
    // glibc reserves about 200 MiB of address space to start a thread (its stack and malloc
    // arena): under a 64 MiB hard limit the worker must report without starting any.
    const request = await newRequest(
      "def f(mib):\n    return len(bytearray(mib * 1024 * 1024)) // (1024 * 1024)\n",
      ["(1,)", "(8,)", "(100,)"],
      { chunkSize: 3 },
    );
    const limit = { memoryLimitBytes: 64 * 1024 * 1024 };
    const run = await runWorker(launchFor(request, limit), 1, undefined, 20_000);
    expectClean(run);
    expect(await results(request.id)).toEqual(["1", "8", null]);
    const [error] = await store.getErrors(request.id);
    expect(error?.error.trimEnd().endsWith("MemoryError")).toBe(true);
  }, 30_000);

  it("turns a 70 MB result over the server's body limit into that task's error, at once", async () => {
    await server.close();
    server = await startServer({ store, port: 0, host: "127.0.0.1", maxBodyBytes: 1024 * 1024 });
    const request = await newRequest(
      "def f(n):\n    return b'x' * n\n",
      ["(1,)", "(70000000,)", "(2,)"],
      {
        chunkSize: 3,
      },
    );
    const started = Date.now();
    const run = await runWorker(launchFor(request), 1, undefined, 60_000);
    expectClean(run);
    // A clear 413 that the worker read, not a broken pipe retried for the whole window.
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(await results(request.id)).toEqual(["b'x'", null, "b'xx'"]);
    const [error] = await store.getErrors(request.id);
    expect(error?.index).toBe(1);
    expect(error?.error).toBe(
      "The result of this task is 70000009 bytes, more than the server accepts in one post" +
        " (its maxBodyBytes, 1048576 bytes). Return something smaller" +
        " (write large outputs to a file and return its path), or raise the server's" +
        " maxBodyBytes; the full report is in the job's standard output.\n",
    );
    // The whole result is still on stdout, for `sheepdog recover`.
    const printed = parseReportLines(run.stdout).filter((line) => line.index === 1);
    expect(printed.map((line) => [line.kind, line.payload.byteLength])).toEqual([
      ["result", 70000009],
      ["error", error?.error.length],
    ]);
  }, 60_000);

  it("imports the local modules that ship with a pyFile function", async () => {
    const shipped = {
      name: "f",
      source:
        "import helpers\nfrom shapes import area\ndef f(x):\n    return helpers.half(area(x))\n",
      modules: {
        "helpers.py": "def half(x):\n    return x / 2\n",
        "shapes/__init__.py": "from .square import area\n",
        "shapes/square.py": "def area(side):\n    return side * side\n",
      },
    };
    const request = await store.createRequest({
      func: new TextEncoder().encode(JSON.stringify(shipped)),
      ns: new Uint8Array(),
      args: pyPickle(["(4,)"]),
      meta: {},
    });
    expectClean(await runWorker(launchFor(request), 1));
    expect(await results(request.id)).toEqual(["8.0"]);
  });

  it("reports a function that cannot be set up as an error for each argument", async () => {
    const request = await newRequest("def f(x:\n    return x\n", ["(1,)", "(2,)"], {
      chunkSize: 2,
    });
    expectClean(await runWorker(launchFor(request), 1));
    const errors = await store.getErrors(request.id);
    expect(errors.map((e) => e.index)).toEqual([0, 1]);
    expect(errors[0]?.error).toMatch(/^The function could not be set up:\n/);
    expect(errors[0]?.error).toContain("SyntaxError");
  });

  it("rides out a server that goes down after the fetch and comes back on the same port", async () => {
    const request = await newRequest(
      "import time\ndef f(x):\n    time.sleep(1.5)\n    return x + 1\n",
      ["(41,)"],
    );
    const port = server.port;
    let fetched!: () => void;
    const wasFetched = new Promise<void>((resolve) => {
      fetched = resolve;
    });
    const getArgs = store.getArgs.bind(store);
    store.getArgs = async (...args) => {
      const got = await getArgs(...args);
      fetched();
      return got;
    };
    let stderr = "";
    const running = runWorker(launchFor(request, { retryWindowSeconds: 60 }), 1, (text) => {
      stderr += text;
    });
    await wasFetched;
    await server.close();
    // Wait until the worker has found the server gone, then bring a new one up.
    const deadline = Date.now() + 20_000;
    while (!stderr.includes("Cannot report to the server") && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(stderr).toContain(`Cannot report to the server at ${server.url}`);
    expect(await results(request.id)).toEqual([null]);
    await restartServer(port);
    const run = await running;
    expect(run.code).toBe(0);
    expect(await results(request.id)).toEqual(["42"]);
  });

  it("fetches once a server that was down at start comes up", async () => {
    const request = await newRequest("def f():\n    return 'up'\n", ["()"]);
    const port = server.port;
    await server.close();
    let stderr = "";
    const running = runWorker(launchFor(request, { retryWindowSeconds: 60 }), 1, (text) => {
      stderr += text;
    });
    const deadline = Date.now() + 20_000;
    while (!stderr.includes("Cannot fetch task 1") && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await restartServer(port);
    const run = await running;
    expect(run.code).toBe(0);
    expect(await results(request.id)).toEqual(["'up'"]);
  });

  it("gives up on an unreachable server with a clear message and a non-zero exit", async () => {
    const request = await newRequest("def f():\n    return 1\n", ["()"]);
    const url = server.url;
    await server.close();
    const started = Date.now();
    const run = await runWorker(launchFor(request, { retryWindowSeconds: 2 }), 1);
    // It never had an answer: the route is wrong (exit 5), not a server being restarted.
    expect(run.code).toBe(5);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    expect(run.stderr).toContain(
      `[sheepdog] [worker] Cannot fetch task 1 of request ${request.id} at ${url} (ConnectionRefusedError: [Errno 111] Connection refused). Retrying for up to 2 s.`,
    );
    expect(run.stderr).toContain(
      `Gave up trying to fetch task 1 of request ${request.id} after 2 s: the server never answered, at ${url} (ConnectionRefusedError: [Errno 111] Connection refused). If the cluster's nodes cannot reach the client, set connect: "relay"`,
    );
    expect(run.stderr).not.toContain(request.token);
    server = await startServer({ store, port: 0, host: "127.0.0.1" });
  });

  it("keeps the results on stdout when the server is gone for good after the fetch", async () => {
    const request = await newRequest(
      "import time\ndef f(x):\n    time.sleep(1.2)\n    return x * 3\n",
      ["(1,)", "(2,)"],
      { chunkSize: 2 },
    );
    const getArgs = store.getArgs.bind(store);
    let closed!: Promise<void>;
    store.getArgs = async (...args) => {
      const got = await getArgs(...args);
      closed = new Promise((resolve) => setTimeout(() => server.close().then(resolve), 50));
      return got;
    };
    const run = await runWorker(launchFor(request, { retryWindowSeconds: 1 }), 1);
    await closed;
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("Gave up trying to report to the server");
    expect(run.stderr).toContain("2 of 2 reports of task 1 were not delivered.");
    expect(run.stderr).toContain("`sheepdog recover`");
    expect(pyRepr(parseReportLines(run.stdout).map((l) => l.payload))).toEqual(["3", "6"]);
    server = await startServer({ store, port: 0, host: "127.0.0.1" });
  }, 30_000);

  it("killed outright, leaves on stdout the report of every call that ended a tenth of a second before", async () => {
    const ends = join(dir, "call-ends");
    writeFileSync(ends, "");
    const source = [
      "import os, time",
      "def f(x):",
      "    time.sleep(0.02)",
      `    fd = os.open(${JSON.stringify(ends)}, os.O_WRONLY | os.O_APPEND)`,
      "    os.write(fd, b'%d %.6f\\n' % (x, time.time()))",
      "    os.close(fd)",
      "    return x",
      "",
    ].join("\n");
    const args = Array.from({ length: 400 }, (_, x) => `(${x},)`);
    const request = await newRequest(source, args, { chunkSize: 400 });
    // Fast calls: no post before the kill (that waits 10 s), stdout is the only route.
    const run = await runWorker(launchFor(request), 1, undefined, 2500);
    expect(run.code).toBeNull();
    const ended = readFileSync(ends, "utf8")
      .trim()
      .split("\n")
      .map((line) => line.split(" ").map(Number) as [number, number]);
    const last = Math.max(...ended.map(([, at]) => at));
    const printed = new Set(parseReportLines(run.stdout).map((line) => line.index));
    const settled = ended.filter(([, at]) => at <= last - 0.15).map(([index]) => index);
    expect(settled.length).toBeGreaterThan(20);
    expect(settled.filter((index) => !printed.has(index))).toEqual([]);
    expect(ended.length).toBeLessThan(args.length);
  }, 30_000);

  it("stops at once with exit 3 when the token is wrong", async () => {
    const request = await newRequest("def f():\n    return 1\n", ["()"]);
    const run = await runWorker(launchFor(request, {}, "wrong"), 1);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(
      `The server refused to fetch task 1 of request ${request.id}: HTTP 401 This needs a valid Sheepdog authorization for its request.`,
    );
  });

  it("exits 2 with a clear message when the token file cannot be read", async () => {
    const request = await newRequest("def f():\n    return 1\n", ["()"]);
    const missing = join(dir, "no-such.token");
    const run = await runWorker(launchFor(request, { tokenFile: missing }), 1);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      `Cannot read the request's token file ${missing} (No such file or directory).`,
    );
  });

  it("reads a relative token file from the home directory", async () => {
    const request = await newRequest("def f():\n    return 'home'\n", ["()"]);
    const launch = launchFor(request);
    const relative = launch.tokenFile.slice(dir.length + 1);
    programs += 1;
    const file = join(dir, `sheepdog_${programs}.py`);
    writeFileSync(file, workerProgram({ ...launch, tokenFile: relative }), { mode: 0o600 });
    expectClean(await runPython(file, { SHEEPDOG_TASK_ID: "1", HOME: dir }));
    expect(await results(request.id)).toEqual(["'home'"]);
  });

  it("exits 2 with a clear message when there is no task number", async () => {
    const request = await newRequest("def f():\n    return 1\n", ["()"]);
    const file = join(dir, "no-task.py");
    writeFileSync(file, workerProgram(launchFor(request)));
    const run = await runPython(file, {});
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("No task number: none of SHEEPDOG_TASK_ID, SGE_TASK_ID");
  });
});

describe("one connection per task (HTTP/1.1 keep-alive)", () => {
  /** A TCP proxy in front of the server that counts the connections made through it. */
  async function countingProxy(): Promise<{
    url: string;
    connections: () => number;
    close(): Promise<void>;
  }> {
    let count = 0;
    const proxy = createNetServer((incoming) => {
      count += 1;
      const outgoing = connectTcp({ host: "127.0.0.1", port: server.port });
      for (const socket of [incoming, outgoing]) {
        socket.on("error", () => {});
        socket.on("close", () => {
          incoming.destroy();
          outgoing.destroy();
        });
      }
      incoming.pipe(outgoing).pipe(incoming);
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const port = (proxy.address() as { port: number }).port;
    const stopRoute = server.acceptRoute(`127.0.0.1:${port}`);
    return {
      url: `http://127.0.0.1:${port}`,
      connections: () => count,
      close: async () => {
        stopRoute();
        await new Promise((resolve) => proxy.close(resolve));
      },
    };
  }

  it("fetches its task and posts each report on one connection", async () => {
    const proxy = await countingProxy();
    try {
      // Each call is slower than 1 s, so each report is posted at once: a GET and 3 POSTs.
      const request = await newRequest(
        "def f(x):\n    import time\n    time.sleep(1.1)\n    return x + 1\n",
        ["(1,)", "(2,)", "(3,)"],
        { chunkSize: 3 },
      );
      expectClean(await runWorker(launchFor(request, { url: proxy.url }), 1));
      expect(await results(request.id)).toEqual(["2", "3", "4"]);
      expect(proxy.connections()).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  it("goes on with its calls while the server stores the batch it sent ahead", async () => {
    const batch = Number(/^POST_BATCH_REPORTS = (\d+)$/m.exec(workerSource())?.[1]);
    expect(batch).toBeGreaterThan(0);
    const request = await newRequest(
      "def f(x):\n    return x\n",
      Array.from({ length: batch + 3 }, (_, x) => `(${x},)`),
      { chunkSize: batch + 3 },
    );
    // The server answers a post once its reports are stored: the first is held 1.5 s here.
    let posts = 0;
    let firstStoredAt = Number.POSITIVE_INFINITY;
    const putReports = async (
      id: number,
      reports: Parameters<NonNullable<Store["putReports"]>>[1],
    ) => {
      posts += 1;
      if (posts > 1) return store.putReports?.(id, reports) ?? [];
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const stored = (await store.putReports?.(id, reports)) ?? [];
      firstStoredAt = Date.now();
      return stored;
    };
    const holding = new Proxy(store, {
      get(target, key) {
        if (key === "putReports") return putReports;
        const value = Reflect.get(target, key, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const holdingServer = await startServer({ store: holding, port: 0, host: "127.0.0.1" });
    try {
      expectClean(await runWorker(launchFor(request, { url: holdingServer.url }), 1));
      const facts = await store.getTaskFacts?.(request.id);
      expect(facts?.filter((fact) => fact?.kind === "result")).toHaveLength(batch + 3);
      // The calls after the first batch ran while the server was storing it.
      const laterStarts = (facts ?? []).slice(batch).map((fact) => fact?.startedAt ?? 0);
      expect(laterStarts).toHaveLength(3);
      expect(Math.max(...laterStarts)).toBeLessThan(firstStoredAt);
      expect(posts).toBe(2);
    } finally {
      await holdingServer.close();
    }
  });

  it("opens a new connection at once when the server closed the kept one while idle", async () => {
    const proxy = await countingProxy();
    try {
      // Longer than the server keeps an idle connection (Node's keepAliveTimeout, 5 s).
      const request = await newRequest(
        "def f(x):\n    import time\n    time.sleep(6)\n    return x * 2\n",
        ["(21,)"],
      );
      const started = Date.now();
      const run = await runWorker(launchFor(request, { url: proxy.url }), 1);
      expectClean(run);
      expect(await results(request.id)).toEqual(["42"]);
      expect(proxy.connections()).toBe(2);
      expect(Date.now() - started).toBeLessThan(9_000);
    } finally {
      await proxy.close();
    }
  }, 20_000);
});
