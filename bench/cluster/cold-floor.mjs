// The cold single-task floor: run as a new process by cold.mjs, which times it from spawn to
// exit (Node's start, loading @sheepdog/deploy-ssh, a new SSH connection, qsub -sync y -t 1-1).
// Prints its own phases as JSON, like cold-map.mjs.
import { join } from "node:path";
import { floor, loadCluster, root, sshOptions } from "./common.mjs";

const started = performance.now();
const { connect } = await import(join(root, "packages/deploy-ssh/dist/index.js"));
const imported = performance.now();
await floor(connect, sshOptions(loadCluster()), 1);
console.log(
  JSON.stringify({
    nodeStartMs: started,
    importMs: imported - started,
    qsubMs: performance.now() - imported,
  }),
);
