// Many calls of a trivial function through mapStream on the test cluster, with the arguments
// made on the fly by a generator (never an array) and each outcome checked and dropped as it
// comes: the client's memory should not grow with the number of calls. Run in a process of its
// own (by bench/run.mjs, or by hand), so that its peak RSS is the client's.
//
// Prints one JSON line: calls, wall time, calls/s, wrong outcomes, the process's peak RSS, its
// RSS sampled every second (to see whether it grows), and its CPU time.
//
// Usage: node bench/cluster/stream.mjs [--calls 10000000] [--window 200000] (mapStream's default)
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { endRun, loadCluster, mapConfig, root, trivial } from "./common.mjs";

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "10000000" },
    window: { type: "string", default: "200000" },
  },
});
const calls = Number(values.calls);
const windowSize = Number(values.window);
const cluster = loadCluster();
const { mapStream, py, shutdown } = await import(join(root, "packages/core/dist/index.js"));
const dir = mkdtempSync(join(tmpdir(), "sheepdog-bench-stream-"));
const dbfile = join(dir, "stream.sqlite");

const rssEverySecond = [];
const sampler = setInterval(
  () => rssEverySecond.push(Math.round(process.memoryUsage.rss() / 1e6)),
  1000,
);

function* args() {
  for (let i = 0; i < calls; i++) yield [i];
}

const started = performance.now();
let seen = 0;
let wrong = 0;
for await (const outcome of mapStream(trivial(py), args(), mapConfig(cluster, dbfile), {
  windowSize,
})) {
  seen += 1;
  if (!outcome.ok || outcome.value !== outcome.index) wrong += 1;
}
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage();
clearInterval(sampler);
if (seen !== calls) wrong += Math.abs(calls - seen);

await endRun(shutdown, cluster, dir, dbfile);

console.log(
  JSON.stringify({
    calls,
    windowSize,
    seconds,
    callsPerSecond: calls / seconds,
    wrong,
    peakRssMb: (process.resourceUsage().maxRSS * 1024) / 1e6,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    rssEverySecond,
  }),
);
if (wrong > 0) process.exit(1);
