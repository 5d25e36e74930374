// End to end on the test cluster: map of a trivial function for N arguments beside the
// cluster's floor, a bare `qsub -sync y -t 1-N` of an empty python3 script over the same kind of
// SSH connection, interleaved in one run (floor then map, map then floor, alternately), each
// after the cluster has emptied. Prints one JSON line per measurement.
//
// With --scheduler slurm, the floor is a bare `sbatch --wait --array=1-N` of the same script.
//
// Usage: node bench/cluster/e2e.mjs [--sizes 1,10,100,400] [--reps 3,3,2,2] [--scheduler gridengine|slurm]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  cleanRemote,
  floor,
  loadCluster,
  mapConfig,
  root,
  sshOptions,
  trivial,
  waitForIdle,
} from "./common.mjs";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "1,10,100,400" },
    reps: { type: "string", default: "3,3,2,2" },
    scheduler: { type: "string", default: "gridengine" },
  },
});
const sizes = values.sizes.split(",").map(Number);
const reps = values.reps.split(",").map(Number);

const cluster = loadCluster();
const { map, py, shutdown } = await import(join(root, "packages/core/dist/index.js"));
const { connect } = await import(join(root, "packages/deploy-ssh/dist/index.js"));
const options = sshOptions(cluster);
const dir = mkdtempSync(join(tmpdir(), "sheepdog-bench-e2e-"));
const dbfile = join(dir, "e2e.sqlite");
const { scheduler } = values;
const config = mapConfig(cluster, dbfile, scheduler);
const f = trivial(py);
const watcher = await connect(options);

async function measureMap(n) {
  const args = Array.from({ length: n }, (_, i) => [i]);
  const started = performance.now();
  const results = await map(f, args, config);
  const seconds = (performance.now() - started) / 1000;
  const wrong = results.filter((r, i) => r !== i).length;
  if (wrong > 0) throw new Error(`map of ${n}: ${wrong} wrong results`);
  return seconds;
}

try {
  let turn = 0;
  const rounds = Math.max(...reps);
  for (let rep = 0; rep < rounds; rep++) {
    for (const [i, n] of sizes.entries()) {
      if (rep >= (reps[i] ?? reps[reps.length - 1])) continue;
      const order = turn++ % 2 === 0 ? ["floor", "map"] : ["map", "floor"];
      for (const kind of order) {
        const idle = await waitForIdle(watcher);
        const seconds =
          kind === "floor" ? await floor(connect, options, n, scheduler) : await measureMap(n);
        console.log(
          JSON.stringify({
            scheduler,
            kind,
            n,
            rep,
            seconds,
            idleBefore: idle.idle,
            waitedMs: idle.waitedMs,
          }),
        );
      }
    }
  }
} finally {
  await shutdown();
  await cleanRemote(watcher, [dbfile]).catch(() => {});
  await watcher.close();
  rmSync(dir, { recursive: true, force: true });
}
