// Worker round trips through the relay on the head node beside the direct route, in one run, as
// workers make them: the real server (built @sheepdog/server over a SQLite store in a temporary
// directory, listening on every interface) in this process, with the SSH connection to the
// test cluster's head node (@sheepdog/deploy-ssh) carrying a remote port forward back to it
// (`tunnelBack`) and the relay (`relayCommand` of @sheepdog/worker-py) started over it, as core
// starts them. On the head node, as the login user, `relay_load.py` runs threads that each do
// round trips with the worker's own `Connection` (`sheepdog_worker.py`, uploaded beside it):
// GET a fresh task, POST its result. Rounds alternate direct, relay, direct, relay, ...
//
// Prints one JSON line per round: round trips/s, p50/p99 latency, failures, and the CPU seconds
// that the load, the relay, the SSH session (sshd) and this process (server and ssh2) spent in
// its window; then {"kind": "done"} with every result checked in the store.
//
// Usage: node bench/cluster/relay.mjs [--threads 32] [--rounds 3] [--seconds 5] [--warmup 1]
//          [--routes direct,relay]
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { argTuple } from "../lib/pickles.mjs";
import { loadCluster, root, sshOptions } from "./common.mjs";

const { values } = parseArgs({
  options: {
    threads: { type: "string", default: "32" },
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "5" },
    warmup: { type: "string", default: "1" },
    routes: { type: "string", default: "direct,relay" },
  },
});
const load = {
  threads: Number(values.threads),
  rounds: Number(values.rounds),
  seconds: Number(values.seconds),
  warmup: Number(values.warmup),
  routes: values.routes.split(","),
};
// Enough fresh tasks for 2,000 round trips/s on every route, warm-ups and stragglers included.
const tasks = Math.ceil(2000 * load.routes.length * load.rounds * (load.seconds + load.warmup + 1));
const RELAY_START_MS = 30_000;

const cluster = loadCluster();
const { startServer } = await import(join(root, "packages/server/dist/index.js"));
const { sqliteStore } = await import(join(root, "packages/store-sqlite/dist/index.js"));
const { connect } = await import(join(root, "packages/deploy-ssh/dist/index.js"));
const { parseRelayFacts, relayCommand, workerPath } = await import(
  join(root, "packages/worker-py/dist/index.js")
);

/** The server on every interface, over a new SQLite store, holding one request of `count` tasks. */
async function startLocal(count) {
  const dir = mkdtempSync(join(tmpdir(), "sheepdog-bench-relay-"));
  const store = sqliteStore({ dbfile: join(dir, "relay.sqlite") });
  const server = await startServer({
    store,
    port: 0,
    host: "0.0.0.0",
    onError: (error) => console.error(`[relay bench server] ${error}`),
  });
  const func = new TextEncoder().encode(
    JSON.stringify({ name: "f", source: "def f(x):\n    return x\n" }),
  );
  const { id, token } = await store.createRequest({
    func,
    ns: new Uint8Array(),
    args: (function* () {
      for (let i = 0; i < count; i++) yield argTuple(i);
    })(),
    meta: { chunkSize: 1 },
  });
  const close = async () => {
    await server.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { server, store, id, token, close };
}

/** Calls `onLine` with each whole line of a stream of chunks. */
function lineReader(onLine) {
  let pending = "";
  const decoder = new TextDecoder();
  return (chunk) => {
    pending += decoder.decode(chunk, { stream: true });
    for (let at = pending.indexOf("\n"); at >= 0; at = pending.indexOf("\n")) {
      onLine(pending.slice(0, at));
      pending = pending.slice(at + 1);
    }
  };
}

/**
 * The relay as core starts it: a remote port forward to `serverPort`, and the relay program
 * over the same connection; resolves once it printed its facts.
 */
async function startRelay(remote, serverPort) {
  const tunnel = await remote.tunnelBack(serverPort);
  const stop = new AbortController();
  let announce;
  const announced = new Promise((resolve) => {
    announce = resolve;
  });
  const command = relayCommand({
    python: cluster.python,
    listenPort: 0,
    tunnelPort: tunnel.remotePort,
  });
  const run = remote.exec(command, {
    signal: stop.signal,
    onStdout: lineReader((line) => {
      const facts = parseRelayFacts(line);
      if (facts) announce(facts);
    }),
  });
  run.catch(() => {});
  const close = async () => {
    stop.abort();
    await run.catch(() => {});
    await tunnel.close();
  };
  const ended = run.then((r) => {
    throw new Error(`the relay ended (exit ${r.code ?? r.signal}): ${r.stderr.trim()}`);
  });
  const late = new Promise((_, reject) =>
    setTimeout(() => reject(new Error("the relay did not start in 30 s")), RELAY_START_MS).unref(),
  );
  try {
    const facts = await Promise.race([announced, ended, late]);
    return { facts, tunnelPort: tunnel.remotePort, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** A new directory under the login user's home for the load's files; its name (relative). */
async function remoteDir(remote) {
  const made = await remote.exec("cd && mktemp -d .sheepdog-bench-relay.XXXXXX");
  const dir = made.stdout.trim();
  if (made.code !== 0 || !/^\.sheepdog-bench-relay\.[A-Za-z0-9]+$/.test(dir)) {
    throw new Error(`mktemp on the head node failed: ${made.stderr || made.stdout}`);
  }
  return dir;
}

/** Puts the load script, the worker and the load's settings (the token in a 0600 file) there. */
async function uploadLoad(remote, dir, settings, token) {
  await remote.upload(`${dir}/sheepdog_worker.py`, readFileSync(workerPath), 0o600);
  await remote.upload(
    `${dir}/relay_load.py`,
    readFileSync(join(root, "bench/cluster/relay_load.py")),
    0o600,
  );
  await remote.upload(`${dir}/token`, token, 0o600);
  await remote.upload(`${dir}/settings.json`, JSON.stringify(settings), 0o600);
}

/**
 * Runs the load on the head node; resolves its round lines (each with the CPU seconds this
 * process spent in its window) and its last line.
 */
async function runLoad(remote, dir) {
  const rounds = [];
  let done;
  let cpuAtStart;
  const onLine = (line) => {
    if (!line.startsWith("{")) return;
    const value = JSON.parse(line);
    if (value.mark === "start") cpuAtStart = process.cpuUsage();
    else if (value.mark === "end") {
      const used = process.cpuUsage(cpuAtStart);
      rounds.push({ nodeCpuSeconds: (used.user + used.system) / 1e6 });
    } else if (value.kind === "round") {
      Object.assign(rounds.at(-1), value);
      value.cpuSeconds.node = rounds.at(-1).nodeCpuSeconds;
      console.log(JSON.stringify(rounds.at(-1)));
    } else if (value.kind === "done") done = value;
  };
  const result = await remote.exec(
    `cd ${dir} && exec ${cluster.python} relay_load.py settings.json`,
    {
      onStdout: lineReader(onLine),
      timeoutMs: 30 * 60_000,
    },
  );
  if (result.code !== 0 || !done) {
    throw new Error(
      `the load failed (exit ${result.code ?? result.signal}): ${result.stderr.trim()}`,
    );
  }
  return { rounds, done };
}

/** Stored results must be every round trip that ended well. */
async function checkStored(local, done) {
  const counts = await local.store.counts(local.id);
  if (done.ranOut) throw new Error(`the load used all ${tasks} tasks: make more`);
  if (counts.results < done.roundTrips) {
    throw new Error(`stored ${counts.results} results for ${done.roundTrips} good round trips`);
  }
  return counts.results;
}

async function main() {
  const local = await startLocal(tasks);
  const remote = await connect(sshOptions(cluster));
  let relay;
  let dir;
  try {
    relay = await startRelay(remote, local.server.port);
    const relayAuthority = `${relay.facts.host}:${relay.facts.port}`;
    const stopRoute = local.server.acceptRoute(relayAuthority);
    dir = await remoteDir(remote);
    const settings = {
      direct: `http://${hostname()}:${local.server.port}`,
      relay: `http://${relayAuthority}`,
      request: local.id,
      tokenFile: `${dir}/token`,
      tasks,
      ...load,
      tunnelPort: relay.tunnelPort,
    };
    await uploadLoad(remote, dir, settings, local.token);
    const { done } = await runLoad(remote, dir);
    const stored = await checkStored(local, done);
    stopRoute();
    console.log(
      JSON.stringify({ ...done, stored, direct: settings.direct, relay: settings.relay }),
    );
  } finally {
    if (dir) await remote.exec(`rm -rf -- ${dir}`).catch(() => {});
    await relay?.close();
    await remote.close();
    await local.close();
  }
}

await main();
