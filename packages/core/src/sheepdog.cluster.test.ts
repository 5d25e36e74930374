import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { describeCluster, loginSettings, testSchedulers } from "@sheepdog/testcluster";
import { afterAll, beforeAll, expect, it } from "vitest";

const run = promisify(execFile);
const resolveFrom = createRequire(import.meta.url);
const url = (specifier: string) =>
  JSON.stringify(pathToFileURL(resolveFrom.resolve(specifier)).href);
const core = JSON.stringify(pathToFileURL(join(import.meta.dirname, "../dist/index.js")).href);

/** Each scheduler's package and factory, as a program passes it to createSheepdog. */
const factories = {
  gridengine: { from: "@sheepdog/gridengine", name: "gridEngine" },
  slurm: { from: "@sheepdog/slurm", name: "slurm" },
} as const;

for (const scheduler of testSchedulers) {
  const factory = factories[scheduler];
  describeCluster(`createSheepdog on the test cluster's ${scheduler}`, (cluster) => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), "sheepdog-compose-cluster-"));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("runs a whole map with the memory store passed in, takes its results in as they are stored, and never loads better-sqlite3", async () => {
      const program = join(dir, `memory-store-${scheduler}.mjs`);
      writeFileSync(
        program,
        `import { createRequire } from "node:module";
import { createSheepdog, py } from ${core};
import { memoryStore } from ${url("@sheepdog/contracts/testing")};
import { connect } from ${url("@sheepdog/deploy-ssh")};
import { ${factory.name} } from ${url(factory.from)};

const remote = await connect(${JSON.stringify(loginSettings(cluster))});
const store = memoryStore();
const reads = [];
const counted = Object.create(store, {
  getResultRange: {
    value: async (id, start, count) => {
      reads.push([start, count]);
      return store.getResultRange(id, start, count);
    },
  },
});
const sheepdog = createSheepdog({
  store: counted,
  cluster: { scheduler: ${factory.name}(remote), remote },
  shell: ${JSON.stringify(cluster.python)},
});
const f = py\`
def f(x):
    if x == 3:
        raise ValueError("three")
    return x * x
\`;
const settled = await sheepdog.mapSettled(f, [[1], [2], [3]]);
const readBack = [...reads];
const recovered = await sheepdog.recover(settled.request);
await sheepdog.close();
await remote.close();
const loaded = Object.keys(createRequire(import.meta.url).cache);
console.log(JSON.stringify({
  results: settled.results.map((r) => (r.ok ? r.value : r.error.trim().split("\\n").pop())),
  readBack,
  recovered,
  betterSqlite3: loaded.some((p) => p.includes("/better-sqlite3/")),
  requests: (await store.listRequests()).length,
}));
`,
      );
      const { stdout } = await run(process.execPath, [program], { timeout: 120_000 });
      expect(JSON.parse(stdout.trim().split("\n").at(-1) ?? "null")).toEqual({
        results: [1, 4, "ValueError: three"],
        // The store told of both results as it stored them: only the failed task is read back.
        readBack: [[2, 1]],
        // Every report reached the server; the job's output files hold them all again.
        recovered: { found: 3, stored: 0, missing: 0 },
        betterSqlite3: false,
        requests: 1,
      });
    }, 150_000);

    it("queues the job while the store writes the arguments, and the tasks wait for the write", async () => {
      const program = join(dir, `early-${scheduler}.mjs`);
      writeFileSync(
        program,
        `import { createSheepdog, py } from ${core};
import { sqliteStore } from ${url("@sheepdog/store-sqlite")};
import { connect } from ${url("@sheepdog/deploy-ssh")};
import { ${factory.name} } from ${url(factory.from)};

const remote = await connect(${JSON.stringify(loginSettings(cluster))});
const sqlite = sqliteStore({ dbfile: ${JSON.stringify(join(dir, `early-${scheduler}.sqlite`))} });
let storedAt = 0;
// The write ends three seconds after SQLite's: longer than the job takes to start.
const slow = Object.create(sqlite, {
  createRequest: {
    value: async (request) => {
      const created = await sqlite.createRequest(request);
      await new Promise((resolve) => setTimeout(resolve, 3000));
      storedAt = Date.now();
      return created;
    },
  },
});
const plain = ${factory.name}(remote);
let submittedAt = 0;
const timed = Object.create(plain, {
  submit: {
    value: async (spec) => {
      submittedAt = Date.now();
      return plain.submit(spec);
    },
  },
});
const sheepdog = createSheepdog({
  store: slow,
  cluster: { scheduler: timed, remote },
  shell: ${JSON.stringify(cluster.python)},
  chunkSize: 2,
});
const f = py\`
def f(x):
    return x + 1
\`;
const results = await sheepdog.map(f, [[1], [2], [3], [4]]);
const [request] = await sqlite.listRequests();
const facts = await sqlite.getTaskFacts(request.id);
await sheepdog.close();
await sqlite.close();
await remote.close();
console.log(JSON.stringify({
  results,
  queuedBeforeStored: submittedAt > 0 && submittedAt < storedAt,
  firstCallAfterStored: Math.min(...facts.map((entry) => entry.startedAt)) - storedAt,
}));
`,
      );
      const { stdout } = await run(process.execPath, [program], { timeout: 120_000 });
      const seen = JSON.parse(stdout.trim().split("\n").at(-1) ?? "null");
      expect(seen).toMatchObject({ results: [2, 3, 4, 5], queuedBeforeStored: true });
      // The node's clock is this machine's: a call begins only once the write has ended.
      expect(seen.firstCallAfterStored).toBeGreaterThanOrEqual(-50);
    }, 150_000);

    it("cancels the job on the cluster when the store cannot record it, and marks the request failed", async () => {
      const program = join(dir, `forgetful-store-${scheduler}.mjs`);
      writeFileSync(
        program,
        `import { createSheepdog, py } from ${core};
import { memoryStore } from ${url("@sheepdog/contracts/testing")};
import { connect } from ${url("@sheepdog/deploy-ssh")};
import { ${factory.name} } from ${url(factory.from)};

const remote = await connect(${JSON.stringify(loginSettings(cluster))});
const store = memoryStore();
const forgetful = Object.create(store, {
  updateMeta: {
    value: async (request, patch) => {
      if ("job" in patch) throw new Error("disk I/O error");
      return store.updateMeta(request, patch);
    },
  },
});
const scheduler = ${factory.name}(remote);
let job;
let tokenAtSubmit;
const tokenFileThere = async () =>
  (await remote.exec(\`ls -- \${job.directory}/\${job.name}.token\`)).code === 0;
const watched = Object.create(scheduler, {
  submit: {
    value: async (spec) => {
      job = await scheduler.submit(spec);
      tokenAtSubmit = await tokenFileThere();
      return job;
    },
  },
});
const sheepdog = createSheepdog({
  store: forgetful,
  cluster: { scheduler: watched, remote },
  shell: ${JSON.stringify(cluster.python)},
});
const f = py\`
def f(x):
    import time
    time.sleep(120)
    return x
\`;
const error = await sheepdog.map(f, [[1], [2]]).catch((e) => e);
const deadline = Date.now() + 30_000;
let states;
do {
  states = [...(await scheduler.status(job)).values()].map((s) => s.state);
  if (!states.some((s) => s === "queued" || s === "running")) break;
  await new Promise((resolve) => setTimeout(resolve, 1000));
} while (Date.now() < deadline);
const [request] = await store.listRequests();
const tokenLeft = await tokenFileThere();
await sheepdog.close();
await remote.close();
console.log(JSON.stringify({
  error: String(error?.message),
  submitted: job !== undefined,
  states,
  cancelled: request?.meta.cancelled?.reason,
  tokenAtSubmit,
  tokenLeft,
}));
`,
      );
      const { stdout } = await run(process.execPath, [program], { timeout: 120_000 });
      const seen = JSON.parse(stdout.trim().split("\n").at(-1) ?? "null");
      expect(seen).toMatchObject({
        submitted: true,
        cancelled: "failed",
        tokenAtSubmit: true,
        tokenLeft: false,
      });
      expect(seen.error).toContain("disk I/O error");
      // Without the cancel both tasks would run (or wait) for two minutes.
      expect(seen.states.filter((s: string) => s === "queued" || s === "running")).toEqual([]);
    }, 150_000);
  });
}
