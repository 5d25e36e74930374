import { spawn } from "node:child_process";

/** Queued tasks of one job, for a process that runs them after this one has gone. */
export interface HandedJob {
  shell: string;
  script: string;
  directory: string;
  /** `<directory>/<name>.`: the task's output goes to `<prefix>o<job>.<task>`, as in TaskRunner. */
  prefix: string;
  jobId: string;
  /** The numbers of its tasks still queued, as runs `[first, last]`. */
  runs: [number, number][];
}

/** What the runner process is given (as JSON in its argv). */
export interface HandOver {
  concurrency: number;
  /** Tasks this process started that still run: they hold slots until they end. */
  runningPids: number[];
  jobs: HandedJob[];
}

/**
 * The runner: plain CommonJS for `node -e`, with nothing but Node's own modules, so that it
 * needs no file of this package at run time. It starts the queued tasks in order, as slots free
 * (a slot is held by each of its own tasks and by each task of the old process still alive),
 * each as TaskRunner would (`shell script`, SHEEPDOG_TASK_ID, .o/.e files of mode 0600). It
 * tells how each ended on its stdout, one JSON line `[job, task, code, signal]`, for as long as
 * the process that handed them over still reads it.
 */
const runnerSource = String.raw`
const { spawn } = require("node:child_process");
const fs = require("node:fs");
process.stdout.on("error", () => {});
const tell = (fact) => { try { process.stdout.write(JSON.stringify(fact) + "\n"); } catch {} };
const spec = JSON.parse(process.argv[1]);
const queue = [];
for (const job of spec.jobs)
  for (const [first, last] of job.runs)
    for (let n = first; n <= last; n++) queue.push([job, n]);
let others = spec.runningPids;
let mine = 0;
let next = 0;
const alive = (pid) => {
  try { process.kill(pid, 0); return true; } catch (e) { return e.code === "EPERM"; }
};
function start(job, n) {
  mine++;
  const base = job.prefix;
  const out = fs.openSync(base + "o" + job.jobId + "." + n, "w", 0o600);
  const err = fs.openSync(base + "e" + job.jobId + "." + n, "w", 0o600);
  const child = spawn(job.shell, [job.script], {
    cwd: job.directory,
    env: { ...process.env, SHEEPDOG_TASK_ID: String(n) },
    stdio: ["ignore", out, err],
  });
  fs.closeSync(out);
  fs.closeSync(err);
  let ended = false;
  const end = (code, signal) => {
    if (ended) return;
    ended = true;
    mine--;
    tell([job.jobId, n, code, signal]);
    tick();
  };
  child.on("error", (e) => {
    fs.appendFileSync(base + "e" + job.jobId + "." + n, "could not start " + job.shell + ": " + e.message + "\n");
    end(127, null);
  });
  child.on("exit", end);
}
function tick() {
  others = others.filter(alive);
  while (next < queue.length && mine + others.length < spec.concurrency) start(...queue[next++]);
  if (next < queue.length && others.length > 0) setTimeout(tick, 200);
}
tick();
`;

/** How a handed-over task ended, as the runner tells it. */
export type HandedEnd = (
  jobId: string,
  task: number,
  code: number | null,
  signal: string | null,
) => void;

/**
 * Starts a process of its own (its own session, not waited for) that runs the handed-over
 * tasks, so that they run even if this process exits at once; while this process lives,
 * `onEnd` hears how each ended.
 */
export function handOver(spec: HandOver, onEnd: HandedEnd): void {
  if (spec.jobs.length === 0) return;
  const child = spawn(process.execPath, ["-e", runnerSource, JSON.stringify(spec)], {
    detached: true,
    stdio: ["ignore", "pipe", "ignore"],
  });
  child.on("error", () => {});
  let pending = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    const lines = (pending + chunk).split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      const [jobId, task, code, signal] = JSON.parse(line) as [
        string,
        number,
        number | null,
        string | null,
      ];
      onEnd(jobId, task, code, signal);
    }
  });
  child.stdout?.on("error", () => {});
  (child.stdout as { unref?: () => void } | null)?.unref?.();
  child.unref();
}

/** Consecutive numbers as runs `[first, last]`. */
export function runsOf(numbers: readonly number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const n of numbers) {
    const last = runs[runs.length - 1];
    if (last && last[1] === n - 1) last[1] = n;
    else runs.push([n, n]);
  }
  return runs;
}
