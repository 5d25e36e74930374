// Benchmarks of @sheepdog/store-sqlite. Run with `pnpm --filter @sheepdog/store-sqlite bench`
// (after a build). Every measurement runs in a child process (scenario.mjs), so that each peak
// RSS is that of the measured work alone. Writes bench/results/store.md and the table in
// packages/store-sqlite/README.md. `--quick` runs tiny sizes, to check that it works.
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const quick = process.argv.includes("--quick");
const scale = quick ? 0.01 : 1;
const MILLION = Math.round(1_000_000 * scale);
const ONE_PROCESS = Math.round(200_000 * scale);
const ONE_IN_FLIGHT = Math.round(50_000 * scale);
const PER_PROCESS = Math.round(25_000 * scale);
const PROCESSES = 8;

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

try {
  const idle = await scenario("idle", join(dir, "idle.sqlite"));
  console.log(`idle process with the store open: peak RSS ${mb(idle.peakRssMb)}`);

  const created = await scenario("create", join(dir, "create.sqlite"), MILLION, "generator");
  row(
    `createRequest, ${fmt(MILLION)} small args (streamed from a generator)`,
    MILLION,
    created.seconds,
    created.peakRssMb,
    "< 5 s, < 300 MB",
  );
  const fromArray = await scenario("create", join(dir, "create-array.sqlite"), MILLION, "array");
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
    const file = join(dir, `put-${mode}.sqlite`);
    const { id } = await scenario("setup", file, count, "empty");
    const put = await scenario("put", file, id, 0, count, mode);
    if (put.stored !== count) throw new Error(`${label}: stored ${put.stored} of ${count}`);
    row(label, count, (put.ended - put.started) / 1000, put.peakRssMb, goal);
  }

  for (const [mode, label] of [
    ["1", "1 call in flight each"],
    ["100", "100 calls in flight each"],
  ]) {
    const file = join(dir, `put8-${mode}.sqlite`);
    const total = PROCESSES * PER_PROCESS;
    const { id } = await scenario("setup", file, total, "empty");
    const { startedAt, reports: puts } = await together(
      Array.from({ length: PROCESSES }, (_, p) => [
        "put",
        file,
        id,
        p * PER_PROCESS,
        PER_PROCESS,
        mode,
      ]),
    );
    const stored = puts.reduce((sum, p) => sum + p.stored, 0);
    if (stored !== total) throw new Error(`8 processes: stored ${stored} of ${total}`);
    const seconds = (Math.max(...puts.map((p) => p.ended)) - startedAt) / 1000;
    const peak = Math.max(...puts.map((p) => p.peakRssMb));
    row(`putResult, ${PROCESSES} processes on one file, ${label}`, total, seconds, peak);
  }

  const file = join(dir, "get.sqlite");
  const { id } = await scenario("setup", file, MILLION, "filled");
  const got = await scenario("get", file, id);
  if (got.tasks !== MILLION || got.withResult !== MILLION) {
    throw new Error(`getResults returned ${got.tasks} tasks, ${got.withResult} with results`);
  }
  row(`getResults, ${fmt(MILLION)} tasks, all with results`, MILLION, got.seconds, got.peakRssMb);

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
  const note = `Peak RSS is that of the measuring process (an idle one with the store open: ${mb(idle.peakRssMb)}); for ${PROCESSES} processes, the largest of them. Values are small (24-byte arguments, 16-byte results), each file on local disk, WAL, synchronous=NORMAL. An awaited putResult is a transaction of its own, so its rate is SQLite's commit rate on this disk; calls in flight together (a server's case) share one transaction. The array row's peak RSS includes the caller's 1,000,000 arguments; the generator row's generator time is included in its time.`;
  const body = `${table}\n\n${machine}. ${note}\n`;
  if (!quick) {
    await writeFile(
      join(root, "bench/results/store.md"),
      `# @sheepdog/store-sqlite benchmarks\n\nMade by \`bench/store/run.mjs\` (\`pnpm --filter @sheepdog/store-sqlite bench\`).\n\n${body}`,
    );
    const readmePath = join(root, "packages/store-sqlite/README.md");
    const readme = await readFile(readmePath, "utf8");
    const start = "<!-- bench:store:start -->";
    const end = "<!-- bench:store:end -->";
    if (readme.includes(start) && readme.includes(end)) {
      const updated = `${readme.slice(0, readme.indexOf(start) + start.length)}\n${body}${readme.slice(readme.indexOf(end))}`;
      await writeFile(readmePath, updated);
    }
  }
  console.log(`\n${body}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
