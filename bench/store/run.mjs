// Benchmarks of the stores: @sheepdog/store-sqlite, and @sheepdog/store-postgres beside it on the
// test cluster's PostgreSQL (when `tooling/testcluster/up` brought it up). Run with
// `pnpm --filter @sheepdog/store-sqlite bench` or `node bench/run.mjs --only store` (after a
// build). Every measurement runs in a child process (scenario.mjs), so that each peak RSS is
// that of the measured work alone. Writes bench/results/store.md and the tables in both stores'
// READMEs. `--quick` runs tiny sizes, to check that it works.
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { dropSchemas, postgresUrl } from "./stores.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const quick = process.argv.includes("--quick");
const scale = quick ? 0.01 : 1;
const MILLION = Math.round(1_000_000 * scale);
const ONE_PROCESS = Math.round(200_000 * scale);
const ONE_IN_FLIGHT = Math.round(50_000 * scale);
const PER_PROCESS = Math.round(25_000 * scale);
const PROCESSES = 8;
const MAP_CALLS = Math.round(100_000 * scale);
const MAP_RUNS = 3;

const run = promisify(execFile);
async function scenario(...args) {
  const { stdout } = await run(
    process.execPath,
    [join(here, "scenario.mjs"), ...args.map(String)],
    {
      maxBuffer: 1 << 20,
    },
  );
  return JSON.parse(stdout);
}

/**
 * Runs `put` scenarios in several processes, started together once all have opened the
 * store. Resolves their reports and the moment they were started.
 */
async function together(argsList) {
  const children = argsList.map((args) => {
    const child = spawn(
      process.execPath,
      [join(here, "scenario.mjs"), ...args.map(String), "wait"],
      {
        stdio: ["pipe", "pipe", "inherit"],
      },
    );
    let stdout = "";
    const ready = new Promise((resolve, reject) => {
      child.stdout.on("data", (chunk) => {
        stdout += chunk;
        if (stdout.startsWith("ready\n")) resolve();
      });
      child.on("error", reject);
    });
    const done = new Promise((resolve, reject) => {
      child.on("close", (code) =>
        code === 0
          ? resolve(JSON.parse(stdout.slice("ready\n".length)))
          : reject(new Error(`scenario ${args.join(" ")} exited with ${code}`)),
      );
    });
    return { child, ready, done };
  });
  await Promise.all(children.map((c) => c.ready));
  const startedAt = Date.now();
  for (const { child } of children) child.stdin.end("go\n");
  return { startedAt, reports: await Promise.all(children.map((c) => c.done)) };
}

const dir = await mkdtemp(join(tmpdir(), "sheepdog-bench-store-"));
const loadBefore = loadavg()[0];
const rows = [];
const fmt = (n, digits = 0) =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const mb = (v) => `${fmt(v)} MB`;
function row(name, count, seconds, peakRssMb, goal = "") {
  rows.push({ name, count, seconds, rate: count / seconds, peakRssMb, goal });
  console.log(
    `${name}: ${fmt(count)} in ${fmt(seconds, 2)} s (${fmt(count / seconds)}/s), peak RSS ${mb(peakRssMb)}`,
  );
}

// Each measurement names its data `name`; a store kind turns that into a target for scenario.mjs:
// a file in the temporary directory, or a schema of the test cluster's PostgreSQL.
const schemas = [];
const sqlite = (name) => join(dir, `${name}.sqlite`);
const postgres = (name) => {
  const schema = `bench_${name.replace(/[^a-z0-9]/g, "_")}_${process.pid}`;
  schemas.push(schema);
  return `pg:${schema}`;
};

/** putResult (or putReports) from one process: seconds and peak RSS. */
async function putOne(target, mode, count, label) {
  const { id } = await scenario("setup", target, count, "empty");
  const put = await scenario("put", target, id, 0, count, mode);
  if (put.stored !== count) throw new Error(`${label}: stored ${put.stored} of ${count}`);
  return { seconds: (put.ended - put.started) / 1000, peakRssMb: put.peakRssMb };
}

/** putResult from PROCESSES processes at once on one store: seconds and the largest peak RSS. */
async function putMany(target, mode) {
  const total = PROCESSES * PER_PROCESS;
  const { id } = await scenario("setup", target, total, "empty");
  const { startedAt, reports: puts } = await together(
    Array.from({ length: PROCESSES }, (_, p) => [
      "put",
      target,
      id,
      p * PER_PROCESS,
      PER_PROCESS,
      mode,
    ]),
  );
  const stored = puts.reduce((sum, p) => sum + p.stored, 0);
  if (stored !== total) throw new Error(`${PROCESSES} processes: stored ${stored} of ${total}`);
  const seconds = (Math.max(...puts.map((p) => p.ended)) - startedAt) / 1000;
  return { seconds, peakRssMb: Math.max(...puts.map((p) => p.peakRssMb)) };
}

/** getResults of a request of MILLION tasks, every one with a result. */
async function getMillion(target) {
  const { id } = await scenario("setup", target, MILLION, "filled");
  const got = await scenario("get", target, id);
  if (got.tasks !== MILLION || got.withResult !== MILLION) {
    throw new Error(`getResults returned ${got.tasks} tasks, ${got.withResult} with results`);
  }
  return got;
}

/** The run of median time, among an odd number of runs. */
function medianRun(runs) {
  return [...runs].sort((a, b) => a.seconds - b.seconds)[Math.floor(runs.length / 2)];
}

/** A whole local map of MAP_CALLS calls. */
async function wholeMap(target) {
  const mapped = await scenario("map", target, MAP_CALLS);
  if (mapped.wrong !== 0) throw new Error(`the map returned ${mapped.wrong} wrong results`);
  return mapped;
}

/** The rows of @sheepdog/store-sqlite's own table; returns the idle process's peak RSS. */
async function measureSqlite() {
  const idle = await scenario("idle", sqlite("idle"));
  console.log(`idle process with the store open: peak RSS ${mb(idle.peakRssMb)}`);
  const created = await scenario("create", sqlite("create"), MILLION, "generator");
  row(
    `createRequest, ${fmt(MILLION)} small args (streamed from a generator)`,
    MILLION,
    created.seconds,
    created.peakRssMb,
    "< 5 s, < 300 MB",
  );
  const fromArray = await scenario("create", sqlite("create-array"), MILLION, "array");
  row(
    `createRequest, ${fmt(MILLION)} small args (from an array held in memory)`,
    MILLION,
    fromArray.seconds,
    fromArray.peakRssMb,
  );
  for (const [mode, count, label, goal] of [
    ["1", ONE_IN_FLIGHT, "putResult, 1 process, 1 call in flight (each awaited)", ""],
    ["100", ONE_PROCESS, "putResult, 1 process, 100 calls in flight", ">= 50,000/s"],
    ["batch", ONE_PROCESS, "putReports of 100, 1 process", ""],
  ]) {
    const put = await putOne(sqlite(`put-${mode}`), mode, count, label);
    row(label, count, put.seconds, put.peakRssMb, goal);
  }
  for (const [mode, label] of [
    ["1", "1 call in flight each"],
    ["100", "100 calls in flight each"],
  ]) {
    const put = await putMany(sqlite(`put8-${mode}`), mode);
    row(
      `putResult, ${PROCESSES} processes on one file, ${label}`,
      PROCESSES * PER_PROCESS,
      put.seconds,
      put.peakRssMb,
    );
  }
  const got = await getMillion(sqlite("get"));
  row(`getResults, ${fmt(MILLION)} tasks, all with results`, MILLION, got.seconds, got.peakRssMb);
  return idle.peakRssMb;
}

/**
 * SQLite beside PostgreSQL in this run: the SQLite rows measured above, the same measurements on
 * PostgreSQL, and a whole local map on each.
 */
async function measureBeside() {
  const byName = (name) => rows.find((r) => r.name === name);
  const pairs = [];
  const pair = (name, count, sqliteRun, postgresRun, goal = "") =>
    pairs.push({ name, count, sqlite: sqliteRun, postgres: postgresRun, goal });
  // The maps first, before PostgreSQL writes the other measurements' millions of rows (whose
  // checkpoints and autovacuum would run under a later map), three of each, interleaved, each
  // store's median kept: the machine is shared.
  const maps = { sqlite: [], postgres: [] };
  for (let run = 0; run < MAP_RUNS; run++) {
    maps.sqlite.push(await wholeMap(sqlite(`map-${run}`)));
    maps.postgres.push(await wholeMap(postgres(`map-${run}`)));
  }
  pair(
    `a whole local map of ${fmt(MAP_CALLS)} calls (python3 tasks on this machine; median of ${MAP_RUNS})`,
    MAP_CALLS,
    medianRun(maps.sqlite),
    medianRun(maps.postgres),
    "PostgreSQL within 1.5x of SQLite",
  );
  const sqlitePut = byName("putResult, 1 process, 100 calls in flight");
  pair(
    "putResult, 1 process, 100 calls in flight",
    ONE_PROCESS,
    sqlitePut,
    await putOne(postgres("put-100"), "100", ONE_PROCESS, "postgres put"),
  );
  const sqlitePut8 = byName(
    `putResult, ${PROCESSES} processes on one file, 100 calls in flight each`,
  );
  pair(
    `putResult, ${PROCESSES} processes on one store, 100 calls in flight each`,
    PROCESSES * PER_PROCESS,
    sqlitePut8,
    await putMany(postgres("put8-100"), "100"),
  );
  const sqliteGet = byName(`getResults, ${fmt(MILLION)} tasks, all with results`);
  pair(
    `getResults, ${fmt(MILLION)} tasks, all with results`,
    MILLION,
    sqliteGet,
    await getMillion(postgres("get")),
  );
  for (const p of pairs) {
    const ratio = p.postgres.seconds / p.sqlite.seconds;
    console.log(
      `${p.name}: SQLite ${fmt(p.sqlite.seconds, 2)} s, PostgreSQL ${fmt(p.postgres.seconds, 2)} s (${fmt(ratio, 2)}x)`,
    );
  }
  return pairs;
}

/** The table of {@link measureBeside}. */
function besideTable(pairs, postgresVersion) {
  const cell = (m, count) =>
    `${fmt(m.seconds, 2)} s (${fmt(count / m.seconds)}/s, ${mb(m.peakRssMb)})`;
  const lines = pairs.map((p) => {
    const ratio = p.postgres.seconds / p.sqlite.seconds;
    const met = p.goal ? (ratio <= 1.5 ? " (met)" : " (missed)") : "";
    return `| ${p.name} | ${fmt(p.count)} | ${cell(p.sqlite, p.count)} | ${cell(p.postgres, p.count)} | ${fmt(ratio, 2)}x | ${p.goal}${met} |`;
  });
  return [
    "| benchmark | operations | SQLite: time (rate, peak RSS) | PostgreSQL: time (rate, peak RSS) | PostgreSQL / SQLite | goal |",
    "|---|---:|---:|---:|---:|---|",
    ...lines,
    "",
    `PostgreSQL ${postgresVersion} on 127.0.0.1 of the same machine (the test cluster's, Debian's defaults: synchronous_commit on, shared_buffers 128 MB), each measurement in a schema of its own, reached over TCP by node-postgres; SQLite as above. The rows of both stores come from the same run. The map is \`createSheepdog({ store, cluster: { scheduler: localScheduler(), remote: localRemote() } }).map\` of \`def f(x): return x + 1\` over ${fmt(MAP_CALLS)} arguments, from the call to the decoded results, with the client, its server, the python3 tasks and the database sharing the machine's ${cpus().length} cores; the maps ran first, three of each store interleaved, and the median is shown. A map run right after PostgreSQL had written the other rows' millions of rows took 2.4 times SQLite's time in an earlier run: its checkpoint and autovacuum ran under the map.`,
  ].join("\n");
}

/** Writes `body` between the markers `<!-- name:start -->` and `<!-- name:end -->` of a README. */
async function writeBetween(readmePath, name, body) {
  const readme = await readFile(readmePath, "utf8");
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  if (!readme.includes(start) || !readme.includes(end)) return;
  const updated = `${readme.slice(0, readme.indexOf(start) + start.length)}\n${body}${readme.slice(readme.indexOf(end))}`;
  await writeFile(readmePath, updated);
}

try {
  const idlePeak = await measureSqlite();
  const havePostgres = postgresUrl() !== undefined;
  const pairs = havePostgres ? await measureBeside() : [];
  const postgresVersion = havePostgres ? await dropSchemas(schemas) : undefined;

  const { stdout: sqliteVersion } = await run(process.execPath, [
    "-e",
    `const D = require(${JSON.stringify(join(root, "packages/store-sqlite/node_modules/better-sqlite3"))});` +
      "process.stdout.write(new D(':memory:').prepare('select sqlite_version() v').get().v)",
  ]);
  const table = [
    "| benchmark | operations | time | rate | peak RSS | goal |",
    "|---|---:|---:|---:|---:|---|",
    ...rows.map(
      (r) =>
        `| ${r.name} | ${fmt(r.count)} | ${fmt(r.seconds, 2)} s | ${fmt(r.rate)}/s | ${mb(r.peakRssMb)} | ${r.goal} |`,
    ),
  ].join("\n");
  const load = `load average ${loadBefore.toFixed(1)} before, ${loadavg()[0].toFixed(1)} after`;
  const machine = `Node ${process.version}, SQLite ${sqliteVersion}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${load}, ${new Date().toISOString().slice(0, 10)}${quick ? " (--quick: sizes divided by 100)" : ""}`;
  const note = `Peak RSS is that of the measuring process (an idle one with the store open: ${mb(idlePeak)}); for ${PROCESSES} processes, the largest of them. Values are small (24-byte arguments, 16-byte results), each file on local disk, WAL, synchronous=NORMAL. An awaited putResult is a transaction of its own, so its rate is SQLite's commit rate on this disk; calls in flight together (a server's case) share one transaction. The array row's peak RSS includes the caller's 1,000,000 arguments; the generator row's generator time is included in its time.`;
  const body = `${table}\n\n${machine}. ${note}\n`;
  const beside = havePostgres
    ? `${besideTable(pairs, postgresVersion)}\n\n${machine}.\n`
    : "Not measured: the test cluster's PostgreSQL is not up (`sudo bash tooling/testcluster/up`).\n";
  if (!quick) {
    await writeFile(
      join(root, "bench/results/store.md"),
      `# Store benchmarks\n\nMade by \`bench/store/run.mjs\` (\`pnpm --filter @sheepdog/store-sqlite bench\`, or \`node bench/run.mjs --only store\`), in one run.\n\n## @sheepdog/store-sqlite\n\n${body}\n## SQLite beside PostgreSQL (@sheepdog/store-postgres)\n\n${beside}`,
    );
    await writeBetween(join(root, "packages/store-sqlite/README.md"), "bench:store", body);
    await writeBetween(
      join(root, "packages/store-postgres/README.md"),
      "bench:store-postgres",
      beside,
    );
  }
  console.log(`\n${body}\n${beside}`);
} finally {
  await rm(dir, { recursive: true, force: true });
  if (schemas.length > 0) await dropSchemas(schemas).catch(() => undefined);
}
