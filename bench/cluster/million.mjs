// One million calls of a trivial function on the test cluster, with automatic chunking. Run
// in a process of its own (by bench/run.mjs, or by hand), so that its peak RSS is the client's:
// the caller's 1,000,000 argument tuples and results included, as in a user's program.
//
// Prints one JSON line: the map's wall time, calls/s, the process's peak RSS, and the map's
// phases as seen from outside: submit (the call until the first progress report: arguments
// pickled and stored, job queued), run (until every result is stored), collect (until map
// returns the decoded results), each with the largest RSS sampled in it (every 20 ms).
//
// Usage: node bench/cluster/million.mjs [--calls 1000000] [--heap-sites] [--dashboard]
//   --heap-sites: also sample allocations (V8's sampling heap profiler, collected objects
//   included) and print the 15 largest allocation sites on stderr as JSON.
//   --dashboard: the same map with `dashboard: true` (its address goes to stderr), as
//   bench/cluster/dashboard.mjs runs it with a browser on the page.
import { mkdtempSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { endRun, loadCluster, mapConfig, root, trivial } from "./common.mjs";

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "1000000" },
    "heap-sites": { type: "boolean", default: false },
    dashboard: { type: "boolean", default: false },
  },
});
const calls = Number(values.calls);
const cluster = loadCluster();
const { map, py, shutdown } = await import(join(root, "packages/core/dist/index.js"));
const dir = mkdtempSync(join(tmpdir(), "sheepdog-bench-million-"));
const dbfile = join(dir, "million.sqlite");

let session;
if (values["heap-sites"]) {
  session = new Session();
  session.connect();
  await session.post("HeapProfiler.enable");
  await session.post("HeapProfiler.startSampling", {
    samplingInterval: 16384,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
}

let phase = "before";
const peaks = {};
const sample = () => {
  const rss = process.memoryUsage.rss() / 1e6;
  peaks[phase] = Math.max(peaks[phase] ?? 0, rss);
};
const sampler = setInterval(sample, 20);
const marks = {};
const enter = (next) => {
  sample();
  marks[next] = performance.now();
  phase = next;
};

const args = Array.from({ length: calls }, (_, i) => [i]);
enter("submit");
// bench/cluster/dashboard.mjs opens its blank page on this line (the dashboard's page opens on
// the address map prints right after it).
process.stderr.write("[bench] map starts\n");
const started = performance.now();
const results = await map(trivial(py), args, mapConfig(cluster, dbfile), {
  dashboard: values.dashboard,
  onProgress: (progress) => {
    if (phase === "submit") enter("run");
    if (phase === "run" && progress.results + progress.errors >= progress.tasks) enter("collect");
  },
});
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage();
enter("after");
clearInterval(sampler);
let wrong = 0;
for (let i = 0; i < calls; i++) if (results[i] !== i) wrong++;

if (session) {
  const { profile } = await session.post("HeapProfiler.getSamplingProfile");
  const sites = new Map();
  const walk = (node, stack) => {
    const frame = node.callFrame;
    const file = frame.url.replace(/^.*\/(packages|node_modules)\//, "").replace(/^file:\/\//, "");
    const here = `${frame.functionName || "(anonymous)"} (${file}:${frame.lineNumber + 1})`;
    const path = [...stack, here];
    if (node.selfSize > 0) {
      // Name a site by the nearest frames in Sheepdog's packages, where the fix would go.
      const ours = path.filter((f) => /^\w[\w-]*\/dist\//.test(f.split("(")[1] ?? ""));
      const key = (ours.length > 0 ? ours.slice(-2) : path.slice(-2)).join(" <- ");
      sites.set(key, (sites.get(key) ?? 0) + node.selfSize);
    }
    for (const child of node.children) walk(child, path);
  };
  walk(profile.head, []);
  const top = [...sites].sort((a, b) => b[1] - a[1]).slice(0, 15);
  console.error(JSON.stringify({ allocatedMb: top.map(([site, bytes]) => [site, bytes / 1e6]) }));
}

await endRun(shutdown, cluster, dir, dbfile);

const ms = (a, b) => Math.round((marks[b] ?? performance.now()) - marks[a]);
console.log(
  JSON.stringify({
    calls,
    seconds,
    callsPerSecond: calls / seconds,
    wrong,
    peakRssMb: (process.resourceUsage().maxRSS * 1024) / 1e6,
    // The process's CPU (user + system) from its start to map's return.
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    phases: {
      submit: { ms: ms("submit", "run"), peakRssMb: peaks.submit },
      run: { ms: ms("run", "collect"), peakRssMb: peaks.run },
      collect: { ms: ms("collect", "after"), peakRssMb: peaks.collect },
    },
    argsBuiltRssMb: peaks.before,
  }),
);
if (wrong > 0) process.exit(1);
