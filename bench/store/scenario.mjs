// One benchmark measurement, run in its own process so that its peak RSS is its own.
// Prints one line of JSON. Used by run.mjs; see there for the scenarios. The store is the
// SQLite file `target`, or, for `pg:<schema>`, that schema of the test cluster's PostgreSQL.
import { performance } from "node:perf_hooks";
import { openStore } from "./stores.mjs";

const [scenario, target, ...rest] = process.argv.slice(2);
const peakRssMb = () => (process.resourceUsage().maxRSS * 1024) / 1e6;

/** A small argument tuple as pickle protocol 4 makes it for (i, "x"): 24 bytes. */
const argTemplate = Uint8Array.from([
  0x80, 0x04, 0x95, 0x0e, 0, 0, 0, 0, 0, 0, 0, 0x4a, 0, 0, 0, 0, 0x8c, 0x01, 0x78, 0x94, 0x86, 0x94,
  0x2e, 0x00,
]);
function smallArg(i) {
  const arg = argTemplate.slice();
  arg[12] = i & 0xff;
  arg[13] = (i >>> 8) & 0xff;
  arg[14] = (i >>> 16) & 0xff;
  arg[15] = (i >>> 24) & 0xff;
  return arg;
}
function* smallArgs(n) {
  for (let i = 0; i < n; i += 1) yield smallArg(i);
}
/** A small result, as a pickled float would be: 16 bytes. */
function smallResult(i) {
  const result = new Uint8Array(16);
  result.set([0x80, 0x04, 0x47]);
  new DataView(result.buffer).setFloat64(3, i * 1.5);
  result[15] = 0x2e;
  return result;
}
const func = new TextEncoder().encode(
  JSON.stringify({ name: "f", source: "def f(i, s): return i * 1.5" }),
);
const ns = new Uint8Array([0x80, 0x04, 0x7d, 0x94, 0x2e]);

const store = await openStore(target);
const out = {};

if (scenario === "idle") {
  await store.listRequests();
} else if (scenario === "create") {
  const [n, source] = [Number(rest[0]), rest[1]];
  const args = source === "array" ? Array.from({ length: n }, (_, i) => smallArg(i)) : smallArgs(n);
  const started = performance.now();
  const { id } = await store.createRequest({ func, ns, args });
  out.seconds = (performance.now() - started) / 1000;
  out.id = id;
  out.tasks = (await store.counts(id)).tasks;
} else if (scenario === "setup") {
  // A request of n tasks; with "filled", every task has a result (written in big batches).
  const [n, filled] = [Number(rest[0]), rest[1] === "filled"];
  const { id } = await store.createRequest({ func, ns, args: smallArgs(n) });
  if (filled) {
    for (let first = 0; first < n; first += 10_000) {
      const reports = [];
      for (let i = first; i < Math.min(first + 10_000, n); i += 1) {
        reports.push({ index: i, kind: "result", value: smallResult(i) });
      }
      await store.putReports(id, reports);
    }
  }
  out.id = id;
} else if (scenario === "put") {
  // Reports results for tasks first .. first + count - 1: "1" awaits each putResult, "100"
  // keeps 100 putResult calls in flight, "batch" sends putReports of 100. With "wait", it
  // opens the store, prints "ready", and starts when a line arrives on stdin (run.mjs starts
  // several processes together that way).
  const [id, first, count] = rest.slice(0, 3).map(Number);
  const [mode, wait] = [rest[3], rest[4] === "wait"];
  await store.counts(id);
  if (wait) {
    process.stdout.write("ready\n");
    await new Promise((resolve) => process.stdin.once("data", resolve));
    process.stdin.pause();
  }
  const started = Date.now();
  let stored = 0;
  if (mode === "1") {
    for (let i = first; i < first + count; i += 1) {
      if (await store.putResult(id, i, smallResult(i))) stored += 1;
    }
  } else if (mode === "100") {
    for (let start = first; start < first + count; start += 100) {
      const calls = [];
      for (let i = start; i < Math.min(start + 100, first + count); i += 1) {
        calls.push(store.putResult(id, i, smallResult(i)));
      }
      for (const s of await Promise.all(calls)) if (s) stored += 1;
    }
  } else if (mode === "batch") {
    for (let start = first; start < first + count; start += 100) {
      const reports = [];
      for (let i = start; i < Math.min(start + 100, first + count); i += 1) {
        reports.push({ index: i, kind: "result", value: smallResult(i) });
      }
      for (const s of await store.putReports(id, reports)) if (s) stored += 1;
    }
  } else {
    throw new Error(`unknown put mode ${mode}`);
  }
  out.started = started;
  out.ended = Date.now();
  out.stored = stored;
} else if (scenario === "get") {
  const id = Number(rest[0]);
  const started = performance.now();
  const results = await store.getResults(id);
  out.seconds = (performance.now() - started) / 1000;
  out.tasks = results.length;
  out.withResult = results.filter((r) => r.result !== null).length;
} else if (scenario === "map") {
  // A whole map of n calls of a trivial function, on this machine's local scheduler: the
  // arguments stored, the tasks fetching them and reporting through the server, the results
  // read back and decoded. The time is the map call's, from the caller's side.
  const n = Number(rest[0]);
  const root = new URL("../../packages/", import.meta.url);
  const { createSheepdog, py } = await import(new URL("core/dist/index.js", root).href);
  const { localRemote, localScheduler } = await import(new URL("local/dist/index.js", root).href);
  const sheepdog = createSheepdog({
    store,
    cluster: { scheduler: localScheduler(), remote: localRemote() },
  });
  const args = Array.from({ length: n }, (_, i) => [i]);
  const started = performance.now();
  const results = await sheepdog.map(py`def f(x): return x + 1`, args);
  out.seconds = (performance.now() - started) / 1000;
  out.wrong = results.filter((r, i) => r !== i + 1).length;
  await sheepdog.close();
} else {
  throw new Error(`unknown scenario ${scenario}`);
}

await store.close();
out.peakRssMb = peakRssMb();
process.stdout.write(`${JSON.stringify(out)}\n`);
