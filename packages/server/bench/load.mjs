// Load benchmark: simulated workers fetch their task and post a result, against one server
// over loopback. Run after a build: `pnpm --filter @sheepdog/server bench`
// Options: --workers N (2000) --concurrency C (64) --store sqlite|memory (sqlite) --chunk K (1)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  decodeTaskFrames,
  encodeReports,
  hashToken,
  macKey,
  REPORTS_CONTENT_TYPE,
  signWorkerRequest,
} from "@sheepdog/contracts";
import { startServer } from "../dist/index.js";

const { values } = parseArgs({
  options: {
    workers: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "64" },
    store: { type: "string", default: "sqlite" },
    chunk: { type: "string", default: "1" },
  },
});
const tasks = Number(values.workers);
const concurrency = Number(values.concurrency);
const chunk = Number(values.chunk);

const dir = mkdtempSync(join(tmpdir(), "sheepdog-bench-"));
let store;
if (values.store === "memory") {
  const { memoryStore } = await import("@sheepdog/contracts/testing");
  store = memoryStore();
} else {
  const { sqliteStore } = await import("@sheepdog/store-sqlite");
  store = sqliteStore({ dbfile: join(dir, "bench.sqlite") });
}

// Argument tuples (n,) and results n, as protocol 4 pickles of small ints.
const pickleInt = (n) => new Uint8Array([0x80, 4, 0x4d, n & 0xff, (n >> 8) & 0xff, 0x2e]);
const argTuple = (n) => new Uint8Array([0x80, 4, 0x4d, n & 0xff, (n >> 8) & 0xff, 0x85, 0x2e]);
const func = new TextEncoder().encode(JSON.stringify({ name: "f", source: "def f(x): return x" }));
const { id, token } = await store.createRequest({
  func,
  ns: new Uint8Array(),
  args: Array.from({ length: tasks * chunk }, (_, i) => argTuple(i)),
  meta: { chunkSize: chunk },
});

let reported = 0;
const server = await startServer({ store, port: 0, host: "127.0.0.1", onReport: () => reported++ });
// Every request is signed as a worker signs it (wire protocol v2).
const key = macKey(hashToken(token));
const signed = (method, path, body) =>
  signWorkerRequest(key, { method, url: server.url, path, ...(body && { body }) }).headers;
const fetchTimes = [];
const postTimes = [];
let failures = 0;

async function worker(task) {
  const path = `/v2/requests/${id}/tasks/${task}`;
  const base = `${server.url}${path}`;
  let t = performance.now();
  const response = await fetch(base, { headers: signed("GET", path) });
  if (response.status !== 200) throw new Error(`fetch ${task}: ${response.status}`);
  const frames = decodeTaskFrames(new Uint8Array(await response.arrayBuffer()));
  fetchTimes.push([task, performance.now() - t]);
  const reports = frames.args.map((_, i) => ({
    index: frames.header.first + i,
    kind: "result",
    payload: pickleInt(frames.header.first + i),
  }));
  t = performance.now();
  const body = encodeReports(reports);
  const posted = await fetch(`${base}/reports`, {
    method: "POST",
    headers: { ...signed("POST", `${path}/reports`, body), "content-type": REPORTS_CONTENT_TYPE },
    body,
  });
  const reply = await posted.json();
  if (posted.status !== 200 || reply.stored !== reports.length) {
    throw new Error(`post ${task}: ${posted.status}`);
  }
  postTimes.push([task, performance.now() - t]);
}

const started = performance.now();
const cpuStart = process.cpuUsage();
let next = 1;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next <= tasks) {
      const task = next++;
      try {
        await worker(task);
      } catch (error) {
        failures++;
        console.error(String(error));
      }
    }
  }),
);
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuStart);
const counts = await store.counts(id);
await server.close();
await store.close();
rmSync(dir, { recursive: true, force: true });

// The first wave (one task per concurrent worker) pays for connections and a cold JIT; it is
// reported apart from the steady state.
const steady = (list) => list.filter(([task]) => task > concurrency).map(([, ms]) => ms);
const firstWave = (list) =>
  Math.max(...list.filter(([task]) => task <= concurrency).map(([, ms]) => ms));
const pct = (list, p) => {
  const sorted = [...list].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
};
const summary = {
  store: values.store,
  workers: tasks,
  chunk,
  concurrency,
  failures,
  stored: counts.results,
  expected: tasks * chunk,
  seconds: Number(seconds.toFixed(2)),
  workersPerSecond: Math.round(tasks / seconds),
  fetchMs: {
    p50: pct(steady(fetchTimes), 50).toFixed(1),
    p99: pct(steady(fetchTimes), 99).toFixed(1),
    firstWaveMax: firstWave(fetchTimes).toFixed(1),
  },
  postMs: {
    p50: pct(steady(postTimes), 50).toFixed(1),
    p99: pct(steady(postTimes), 99).toFixed(1),
  },
  // CPU of this process (server and simulated workers together) per worker: steadier than
  // wall time on a busy machine.
  cpuMsPerWorker: Number(((cpu.user + cpu.system) / 1000 / tasks).toFixed(2)),
  rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
};
console.log(JSON.stringify(summary));
if (failures > 0 || counts.results !== tasks * chunk || reported !== tasks * chunk) process.exit(1);
