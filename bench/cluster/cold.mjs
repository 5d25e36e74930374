// A cold single-task map (a new Node process, a new SSH connection) against the cold 1-task
// floor (a new Node process that connects and runs qsub -sync y -t 1-1), interleaved, each
// timed from spawn to exit. Prints one JSON line per measurement.
//
// Usage: node bench/cluster/cold.mjs [--reps 3]
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { cleanRemote, loadCluster, root, sshOptions, waitForIdle } from "./common.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const run = promisify(execFile);
const { values } = parseArgs({ options: { reps: { type: "string", default: "3" } } });
const { connect } = await import(join(root, "packages/deploy-ssh/dist/index.js"));
const watcher = await connect(sshOptions(loadCluster()));
const dir = mkdtempSync(join(tmpdir(), "sheepdog-bench-cold-"));
const dbfile = join(dir, "cold.sqlite");
// The results file exists already, as ./sheepdog.sqlite does after a user's first map.
const { sqliteStore } = await import(join(root, "packages/store-sqlite/dist/index.js"));
const setup = sqliteStore({ dbfile });
await setup.listRequests();
await setup.close();

async function timed(script, args = []) {
  const started = performance.now();
  const { stdout } = await run(process.execPath, [join(here, script), ...args], { cwd: dir });
  return { seconds: (performance.now() - started) / 1000, phases: JSON.parse(stdout) };
}

try {
  for (let rep = 0; rep < Number(values.reps); rep++) {
    const order = rep % 2 === 0 ? ["floor", "map"] : ["map", "floor"];
    for (const kind of order) {
      const idle = await waitForIdle(watcher);
      // GridEngine works in one-second ticks (its scheduler's interval, and when qsub -sync
      // learns that a job ended): a random wait of up to a second after the queue emptied makes
      // each measurement start at another point of the tick, not always at the same one.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 1000));
      const { seconds, phases } =
        kind === "floor" ? await timed("cold-floor.mjs") : await timed("cold-map.mjs", [dbfile]);
      console.log(JSON.stringify({ kind, n: 1, rep, seconds, phases, idleBefore: idle.idle }));
    }
  }
} finally {
  await cleanRemote(watcher, [dbfile]).catch(() => {});
  await watcher.close();
  rmSync(dir, { recursive: true, force: true });
}
