import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { startServer } from "@sheepdog/server";
import { sqliteStore } from "@sheepdog/store-sqlite";
import {
  describeCluster,
  schedulerSettings,
  testSchedulers,
  unusedPort,
} from "@sheepdog/testcluster";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { SheepdogConfig } from "./config.js";
import { getErrors, getResults, map, mapAsync, py, pyFile, shutdown } from "./index.js";

const run = promisify(execFile);

/** Each scheduler's request for a memory limit that the worker applies with setrlimit. */
const memoryLimit: Record<(typeof testSchedulers)[number], Partial<SheepdogConfig>> = {
  gridengine: { geOpts: ["-l mem_grab=300M"] },
  slurm: { slurmOpts: ["--mem=300M"] },
};

for (const scheduler of testSchedulers) {
  describeCluster(`map on the test cluster's ${scheduler} (the original's examples)`, (cluster) => {
    let dir: string;
    let config: SheepdogConfig;
    /**
     * How to log in, without the host: work on an existing request takes its host from the
     * request, and SSH settings only from the caller.
     */
    let login: Omit<SheepdogConfig, "host">;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), "sheepdog-core-cluster-"));
      config = { ...schedulerSettings(cluster, scheduler), dbfile: join(dir, "sheepdog.sqlite") };
      const { host: _host, ...rest } = config;
      login = rest;
    });
    afterAll(async () => {
      await shutdown();
      rmSync(dir, { recursive: true, force: true });
    });

    const add = py`
def f(a, b):
    return a + b
`;

    it("Synchronous Map: results in argument order", async () => {
      expect(
        await map(
          add,
          [
            [1, 1],
            [1, 2],
            [2, 2],
          ],
          config,
        ),
      ).toEqual([2, 3, 4]);
    });

    it("Asynchronous Map: a request id at once, results with getResults", async () => {
      const id = await mapAsync(
        add,
        [
          [1, 1],
          [1, 2],
          [2, 2],
        ],
        config,
      );
      expect(Number.isInteger(id)).toBe(true);
      const rows = await getResults(id, { ...login, block: true });
      expect(rows).toEqual([
        [[1, 1], 2],
        [[1, 2], 3],
        [[2, 2], 4],
      ]);
    });

    it("Namespaces: constants and helper functions", async () => {
      const f = py`
def f(a, b):
    return a + g(b) + constant
`;
      const g = py`
def g(x):
    return x * 2
`;
      const ns = { constant: 12, g };
      expect(
        await map(
          f,
          [
            [1, 2],
            [2, 3],
            [3, 4],
          ],
          config,
          { ns },
        ),
      ).toEqual([17, 20, 23]);
    });

    it("Imports: numpy on the node, exported to other functions (numpy scalars come back as numbers)", async () => {
      const g = py`
def g(x):
    return np.mean(x)
`;
      const f = py`
def f(x):
    import numpy as np
    global np
    return g(x)
`;
      expect(await map(f, [[[1, 2, 3]], [[4, 6]]], config, { ns: { g } })).toEqual([2, 5]);
    });

    it("pyFile: a whole module ships with its imports and helpers", async () => {
      const module = join(dir, "stats.py");
      writeFileSync(
        module,
        [
          "import statistics",
          "",
          "def spread(xs):",
          "    return max(xs) - min(xs)",
          "",
          "def summary(xs):",
          "    return [statistics.median(xs), spread(xs)]",
          "",
        ].join("\n"),
      );
      expect(await map(pyFile(module, "summary"), [[[1, 5, 3]], [[2, 2]]], config)).toEqual([
        [3, 4],
        [2, 0],
      ]);
    });

    it("Results and Errors: null for a failed task, the traceback from getErrors", async () => {
      const f = py`
def f(x):
    return 10 // x
`;
      const id = await mapAsync(f, [[5], [0], [2]], config);
      const rows = await getResults(id, { ...login, block: true });
      expect(rows.map(([, result]) => result)).toEqual([2, null, 5]);
      const errors = await getErrors(id, { dbfile: config.dbfile });
      expect(errors).toHaveLength(1);
      expect(errors[0]?.[0]).toEqual([0]);
      expect(errors[0]?.[1]).toContain("Traceback (most recent call last)");
      expect(errors[0]?.[1]).toContain("ZeroDivisionError");
    });

    it("a custom shell runs the tasks", async () => {
      const f = py`
def f():
    import os, sys
    return os.path.realpath(sys.executable)
`;
      expect(await map(f, [[]], { ...config, shell: "/usr/bin/python3.11" })).toEqual([
        "/usr/bin/python3.11",
      ]);
      const missing = py`
def f():
    return 1
`;
      const id = await mapAsync(missing, [[]], { ...config, shell: "/usr/bin/python2.7" });
      const rows = await getResults(id, { ...login, block: true });
      expect(rows).toEqual([[[], null]]);
      const [[, error] = []] = await getErrors(id, { dbfile: config.dbfile });
      expect(error).toContain("/usr/bin/python2.7");
    });

    it(`${JSON.stringify(memoryLimit[scheduler])} limits each task's memory`, async () => {
      const f = py`
def f(mib):
    block = bytearray(mib * 1024 * 1024)
    return len(block) // (1024 * 1024)
`;
      const id = await mapAsync(f, [[10], [1000]], { ...config, ...memoryLimit[scheduler] });
      const rows = await getResults(id, { ...login, block: true });
      expect(rows.map(([, result]) => result)).toEqual([10, null]);
      const [[, error] = []] = await getErrors(id, { dbfile: config.dbfile });
      expect(error).toContain("MemoryError");
    });

    it("Restarting The Server: a new server on the same port and dbfile receives every result", async () => {
      const dbfile = join(dir, "restart.sqlite");
      const slow = py`
def f(x):
    import time
    time.sleep(3)
    return x * x
`;
      const port = await unusedPort();
      const id = await mapAsync(slow, [[1], [2], [3], [4], [5], [6]], { ...config, dbfile, port });
      await shutdown();
      await new Promise((resolve) => setTimeout(resolve, 4000));
      const store = sqliteStore({ dbfile });
      const server = await startServer({ store, port });
      try {
        const rows = await getResults(id, { dbfile, block: true });
        expect(rows.map(([, result]) => result)).toEqual([1, 4, 9, 16, 25, 36]);
      } finally {
        await server.close();
        await store.close();
      }
    }, 120_000);

    it("two maps at once from one process", async () => {
      const [a, b] = await Promise.all([
        map(
          add,
          [
            [1, 2],
            [3, 4],
          ],
          config,
        ),
        map(
          add,
          [
            ["a", "b"],
            ["c", "d"],
          ],
          config,
        ),
      ]);
      expect(a).toEqual([3, 7]);
      expect(b).toEqual(["ab", "cd"]);
    });

    it("two processes sharing one dbfile (the other runs the built dist)", async () => {
      const script = join(dir, "other.mjs");
      writeFileSync(
        script,
        `import { map, py, shutdown } from ${JSON.stringify(pathToFileURL(join(import.meta.dirname, "../dist/index.js")).href)};
const f = py\`
def f(x):
    return x + 100
\`;
console.log(JSON.stringify(await map(f, [[1], [2], [3]], JSON.parse(process.argv[2]))));
await shutdown();
`,
      );
      const other = run(process.execPath, [script, JSON.stringify(config)], { timeout: 90_000 });
      const mine = map(
        add,
        [
          [10, 1],
          [20, 2],
        ],
        config,
      );
      const [{ stdout }, results] = await Promise.all([other, mine]);
      expect(JSON.parse(stdout)).toEqual([101, 102, 103]);
      expect(results).toEqual([11, 22]);
    }, 120_000);
  });
}
