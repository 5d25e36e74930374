// One cold single-task map: run as a new process by cold.mjs, which times it from spawn to
// exit (Node's start, loading @sheepdog/core, a new SSH connection, the map, the exit). Prints
// its own phases as JSON: milliseconds since the process started at each step.
import { join } from "node:path";
import { loadCluster, mapConfig, root, trivial } from "./common.mjs";

const since = () => performance.now();
const started = since();
const { map, py, shutdown } = await import(join(root, "packages/core/dist/index.js"));
const imported = since();
const results = await map(trivial(py), [[7]], mapConfig(loadCluster(), process.argv[2]));
const mapped = since();
await shutdown();
if (results[0] !== 7) throw new Error(`the cold map returned ${JSON.stringify(results)}`);
console.log(
  JSON.stringify({
    nodeStartMs: started,
    importMs: imported - started,
    mapMs: mapped - imported,
    shutdownMs: since() - mapped,
  }),
);
