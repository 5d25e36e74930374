// How hard a map asks the scheduler: a map of 8 calls of 20 s (4 slots, so two waves), on each
// scheduler of the test cluster, counting every command its scheduler runs on the head node.
// Status rounds are the `qstat` / `squeue` commands (the accounting commands, `qacct`, `sacct`,
// `scontrol show job`, only follow a task that left the queue). Prints one JSON line per
// scheduler.
//
// Usage: node bench/cluster/queries.mjs [--calls 8] [--seconds 20]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadCluster, root, sshOptions, waitForIdle } from "./common.mjs";

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "8" },
    seconds: { type: "string", default: "20" },
  },
});
const calls = Number(values.calls);
const cluster = loadCluster();
const { createSheepdog, py } = await import(join(root, "packages/core/dist/index.js"));
const { connect } = await import(join(root, "packages/deploy-ssh/dist/index.js"));
const { gridEngine } = await import(join(root, "packages/gridengine/dist/index.js"));
const { slurm } = await import(join(root, "packages/slurm/dist/index.js"));
const factories = { gridengine: gridEngine, slurm };
// A command may follow lines of setup (the scheduler's `setup` option, GridEngine's functions
// for the programs behind Debian's wrapper, which name the programs but run none).
const statusCommand = /^\s*(qstat -xml|squeue) /m;
const accountingCommand = /^\s*(qacct |sacct |scontrol -o show job)/m;

/** A remote that notes when each command started. */
function counting(remote, log) {
  return new Proxy(remote, {
    get(target, key) {
      if (key === "exec") {
        return (command, options) => {
          log.push({ at: performance.now(), command });
          return target.exec(command, options);
        };
      }
      const value = Reflect.get(target, key);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

const f = py`
def f(seconds):
    import time
    time.sleep(seconds)
    return seconds
`;
const dir = mkdtempSync(join(tmpdir(), "sheepdog-bench-queries-"));
const watcher = await connect(sshOptions(cluster));
try {
  for (const [name, factory] of Object.entries(factories)) {
    await waitForIdle(watcher);
    const remote = await connect(sshOptions(cluster));
    const log = [];
    const spied = counting(remote, log);
    const sheepdog = createSheepdog({
      cluster: { scheduler: factory(spied), remote: spied },
      dbfile: join(dir, `${name}.sqlite`),
      chunkSize: 1,
    });
    const started = performance.now();
    try {
      const results = await sheepdog.map(
        f,
        Array.from({ length: calls }, () => [Number(values.seconds)]),
      );
      if (results.some((r) => r !== Number(values.seconds)))
        throw new Error(`${name}: wrong results`);
    } finally {
      await sheepdog.close();
      await remote.close();
    }
    const seconds = (performance.now() - started) / 1000;
    const rounds = log.filter((e) => statusCommand.test(e.command)).map((e) => e.at);
    const gaps = rounds.slice(1).map((at, i) => (at - (rounds[i] ?? at)) / 1000);
    const sorted = [...gaps].sort((a, b) => a - b);
    console.log(
      JSON.stringify({
        scheduler: name,
        calls,
        seconds,
        statusRounds: rounds.length,
        accountingCommands: log.filter((e) => accountingCommand.test(e.command)).length,
        commands: log.length,
        roundsPerMinute: (rounds.length / seconds) * 60,
        medianGap: sorted[Math.floor(sorted.length / 2)] ?? null,
        minGap: sorted[0] ?? null,
        maxGap: sorted.at(-1) ?? null,
      }),
    );
  }
} finally {
  await watcher.close();
  rmSync(dir, { recursive: true, force: true });
}
