// Collecting a detached map's spool: `calls` trivial calls submitted with `mapAsync(...,
// { detach: true })` on the test cluster's GridEngine by a process that then shuts down, so that
// every worker finds nothing listening and spools its reports on the head node; once the job
// has ended, a NEW Node process collects them with `getResults(id, { block: true })` (SSH
// connection, the spool read, checked, stored and removed, the results read and decoded) and
// the results are checked: all present, correct, in order.
//
// Before that collection, the request's files on the head node and the dbfile are copied, so
// that the same spool can be collected again: by `requestStatus` (the collection without the
// reading of results), and under the CPU profiler when asked (--profile-dir, when the median
// is --profile-over seconds or more).
//
// Prints one JSON line per run ({"kind": "run", ...}) and, when profiled, {"kind": "profiled"}.
//
// Usage: node bench/cluster/spool.mjs [--calls 100000] [--chunk-size 2000] [--runs 3]
//          [--profile-dir DIR --profile-over SECONDS]
// (The script also runs as its own submitter and collectors: --phase submit|collect.)
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { cleanRemote, loadCluster, mapConfig, root, sshOptions, waitForIdle } from "./common.mjs";

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "100000" },
    "chunk-size": { type: "string", default: "2000" },
    runs: { type: "string", default: "3" },
    "profile-dir": { type: "string" },
    "profile-over": { type: "string", default: "Infinity" },
    phase: { type: "string" },
    call: { type: "string", default: "results" },
    dbfile: { type: "string" },
    "ssh-dir": { type: "string" },
    id: { type: "string" },
  },
});
const calls = Number(values.calls);
const chunkSize = Number(values["chunk-size"]);
const cluster = loadCluster();
const corePath = join(root, "packages/core/dist/index.js");
const script = fileURLToPath(import.meta.url);
const execNode = promisify(execFile);
const JOB_TIMEOUT_MS = 15 * 60_000;
const SAFE_PATH = /^[A-Za-z0-9_./-]+$/;

const mb = (bytes) => bytes / 1e6;
const peakRssMb = () => mb(process.resourceUsage().maxRSS * 1024);

/** The configuration every process of a run uses: the head node, the dbfile, the ssh dir. */
function configOf(dbfile, sshDir) {
  return { ...mapConfig(cluster, dbfile, "gridengine"), sshDir, chunkSize };
}

// ---- the submitter: a process of its own, gone before the job runs -------------------------

async function submit() {
  const { listRequests, mapAsync, py, shutdown } = await import(corePath);
  const f = py`
def f(x):
    return x + 1
`;
  const args = Array.from({ length: calls }, (_, i) => [i]);
  const config = configOf(values.dbfile, values["ssh-dir"]);
  const started = performance.now();
  const id = await mapAsync(f, args, config, { detach: true });
  const submitSeconds = (performance.now() - started) / 1000;
  const request = (await listRequests({ dbfile: values.dbfile })).find((r) => r.id === id);
  await shutdown();
  const { job, staged } = request.meta;
  console.log(
    JSON.stringify({
      id,
      submitSeconds,
      jobIds: job.parts.map((part) => part.jobId),
      tasks: job.tasks,
      staged,
    }),
  );
}

// ---- the collectors: each a new process, as a user's next program -------------------------

/** Fails the process unless `rows` are the calls' results, all there, in order. */
function checkRows(rows) {
  if (rows.length !== calls) throw new Error(`${rows.length} rows for ${calls} calls`);
  let wrong = 0;
  for (let i = 0; i < calls; i++) {
    const [args, value] = rows[i];
    if (args[0] !== i || value !== i + 1) wrong++;
  }
  if (wrong > 0) throw new Error(`${wrong} of ${calls} results are missing, wrong or out of order`);
}

async function collect() {
  const importStarted = performance.now();
  const core = await import(corePath);
  const importMs = performance.now() - importStarted;
  const rssBeforeMb = mb(process.memoryUsage.rss());
  const id = Number(values.id);
  const config = configOf(values.dbfile, values["ssh-dir"]);
  const { scheduler: _, chunkSize: __, ...login } = config;
  const started = performance.now();
  const out = { call: values.call, importMs, rssBeforeMb };
  if (values.call === "status") {
    const status = await core.requestStatus(id, login);
    out.seconds = (performance.now() - started) / 1000;
    out.peakRssMb = peakRssMb();
    if (status.results !== calls || status.errors !== 0) {
      throw new Error(`requestStatus: ${status.results} results, ${status.errors} errors`);
    }
  } else {
    const rows = await core.getResults(id, { ...login, block: true });
    out.seconds = (performance.now() - started) / 1000;
    out.peakRssMb = peakRssMb();
    checkRows(rows);
    // The same results again, read from the store alone: nothing is left to collect.
    const again = performance.now();
    checkRows(await core.getResults(id, { dbfile: values.dbfile }));
    out.readSeconds = (performance.now() - again) / 1000;
  }
  await core.shutdown();
  console.log(JSON.stringify(out));
}

// ---- the run: submit, wait for the job's end, collect --------------------------------------

/** Runs this script as a child in `phase`; resolves its last JSON line. */
async function child(phase, args, nodeFlags = []) {
  const { stdout } = await execNode(
    process.execPath,
    [...nodeFlags, script, "--phase", phase, "--calls", String(calls), ...args],
    { cwd: root, maxBuffer: 64 << 20, timeout: JOB_TIMEOUT_MS },
  );
  const line = stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .at(-1);
  if (!line) throw new Error(`the ${phase} printed nothing`);
  return JSON.parse(line);
}

async function onHead(remote, command) {
  const result = await remote.exec(command, { timeoutMs: 120_000 });
  if (result.code !== 0) {
    throw new Error(`${command.slice(0, 80)} failed (${result.code}): ${result.stderr.trim()}`);
  }
  return result.stdout;
}

/** Waits until GridEngine knows none of `jobIds`; resolves the seconds waited. */
async function waitForJobEnd(remote, jobIds) {
  const started = performance.now();
  const ids = jobIds.map(String).filter((id) => /^[0-9]+$/.test(id));
  if (ids.length === 0) throw new Error(`no job ids: ${JSON.stringify(jobIds)}`);
  const check = `for j in ${ids.join(" ")}; do qstat -j $j >/dev/null 2>&1 && echo runs; done; true`;
  while ((await onHead(remote, check)).includes("runs")) {
    if (performance.now() - started > JOB_TIMEOUT_MS) throw new Error("the job did not end");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return (performance.now() - started) / 1000;
}

/** The spool files in `spoolDir` on the head node: how many, and their bytes. */
async function spoolOf(remote, spoolDir) {
  const text = await onHead(
    remote,
    `find ${spoolDir} -maxdepth 1 -name '*.reports' -printf '%s\\n' 2>/dev/null | awk '{n++; s+=$1} END {print n+0, s+0}'`,
  );
  const [files, bytes] = text.trim().split(" ").map(Number);
  return { files, bytes };
}

/**
 * Copies the request's files on the head node (its staged directory and token) and the dbfile
 * (closed: the submitter is gone); resolves a function that puts a copy of them back, under a
 * new dbfile, and resolves its path.
 */
async function keepCopy(remote, dir, staged, dbfile) {
  const name = staged.dir.slice(staged.dir.lastIndexOf("/") + 1, -".d".length);
  const sshDir = staged.dir.slice(0, staged.dir.lastIndexOf("/"));
  const copies = `${sshDir}/copies`;
  await onHead(
    remote,
    `mkdir -p ${copies} && cp -a ${staged.dir} ${copies}/ && cp -a ${sshDir}/${name}.token ${copies}/`,
  );
  const kept = join(dir, "kept.sqlite");
  copyFileSync(dbfile, kept);
  for (const tail of ["-wal", "-shm"]) {
    if (existsSync(dbfile + tail)) copyFileSync(dbfile + tail, kept + tail);
  }
  let restores = 0;
  return async () => {
    await onHead(
      remote,
      `rm -rf ${staged.dir} && cp -a ${copies}/${name}.d ${sshDir}/ && cp -a ${copies}/${name}.token ${sshDir}/`,
    );
    const restored = join(dir, `restored-${++restores}.sqlite`);
    copyFileSync(kept, restored);
    for (const tail of ["-wal", "-shm"]) {
      if (existsSync(kept + tail)) copyFileSync(kept + tail, restored + tail);
    }
    return restored;
  };
}

/** One run: a new request submitted, its job waited for, its spool collected twice. */
async function oneRun(remote, run, sshDir) {
  const dir = mkdtempSync(join(tmpdir(), "sheepdog-bench-spool-"));
  const dbfile = join(dir, "spool.sqlite");
  const common = ["--chunk-size", String(chunkSize), "--ssh-dir", sshDir];
  try {
    const idleBeforeSubmit = (await waitForIdle(remote, 180_000)).idle;
    const submitted = await child("submit", ["--dbfile", dbfile, ...common]);
    const { staged } = submitted;
    if (!SAFE_PATH.test(staged?.dir ?? "") || !SAFE_PATH.test(staged?.spoolDir ?? "")) {
      throw new Error(`unexpected staged paths: ${JSON.stringify(staged)}`);
    }
    const jobSeconds = await waitForJobEnd(remote, submitted.jobIds);
    const spool = await spoolOf(remote, staged.spoolDir);
    if (spool.files === 0) throw new Error("the job ended with nothing in its spool");
    const restore = await keepCopy(remote, dir, staged, dbfile);
    const idleBeforeCollect = (await waitForIdle(remote, 120_000)).idle;
    const ids = ["--id", String(submitted.id), ...common];
    const results = await child("collect", ["--dbfile", dbfile, ...ids]);
    const left = await spoolOf(remote, staged.spoolDir);
    if (left.files > 0) throw new Error(`${left.files} spool files left after getResults`);
    const status = await child("collect", [
      "--call",
      "status",
      "--dbfile",
      await restore(),
      ...ids,
    ]);
    const line = {
      kind: "run",
      run,
      calls,
      chunkSize,
      tasks: submitted.tasks,
      request: submitted.id,
      submitSeconds: submitted.submitSeconds,
      jobSeconds,
      spoolFiles: spool.files,
      spoolBytes: spool.bytes,
      leftAfter: left.files,
      getResults: results,
      requestStatus: status,
      idleBeforeSubmit,
      idleBeforeCollect,
    };
    console.log(JSON.stringify(line));
    return { line, restore, ids, dbfile, dir };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

async function profileOnce(kept) {
  const dir = values["profile-dir"];
  const profiled = await child(
    "collect",
    ["--dbfile", await kept.restore(), ...kept.ids],
    ["--cpu-prof", "--cpu-prof-dir", dir],
  );
  console.log(JSON.stringify({ kind: "profiled", ...profiled }));
}

async function main() {
  const { connect } = await import(join(root, "packages/deploy-ssh/dist/index.js"));
  const remote = await connect(sshOptions(cluster));
  const sshDir = `.sheepdog-bench-spool-${process.pid}`;
  const runs = [];
  try {
    for (let run = 0; run < Number(values.runs); run++)
      runs.push(await oneRun(remote, run, sshDir));
    const seconds = runs.map((r) => r.line.getResults.seconds).sort((a, b) => a - b);
    const median = seconds[Math.floor(seconds.length / 2)];
    if (values["profile-dir"] && median >= Number(values["profile-over"])) {
      await profileOnce(runs.at(-1));
    }
  } finally {
    await cleanRemote(
      remote,
      runs.map((r) => r.dbfile),
    ).catch(() => {});
    await remote.exec(`rm -rf -- ${sshDir}`).catch(() => {});
    await remote.close();
    for (const r of runs) rmSync(r.dir, { recursive: true, force: true });
  }
}

if (values.phase === "submit") await submit();
else if (values.phase === "collect") await collect();
else await main();
