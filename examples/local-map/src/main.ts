// Sheepdog's first map, on the local scheduler: each argument tuple runs as a python3 task on
// this machine, and the results come home in order. Swap `host: "local"` for your cluster's
// head node (and geOpts) to run the same map as a GridEngine array job.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getErrors, getResults, map, mapAsync, py, shutdown } from "@sheepdog/core";

const add = py`
def f(a, b):
    return a + g(b) + constant
`;
const g = py`
def g(x):
    return x * 2
`;

const dbfile = join(mkdtempSync(join(tmpdir(), "sheepdog-example-")), "sheepdog.sqlite");
const config = { host: "local", dbfile };
const results = await map(
  add,
  [
    [1, 2],
    [2, 3],
    [3, 4],
  ],
  config,
  {
    ns: { g, constant: 12 },
    verbose: true,
  },
);
console.log(results);

const risky = py`
def f(x):
    return 10 / x
`;
const id = await mapAsync(risky, [[5], [0], [2]], config);
const rows = await getResults(id, { dbfile, block: true });
const quotients = rows.map(([, result]) => result);
console.log(rows);
for (const [args, error] of await getErrors(id, { dbfile })) {
  console.log("failed for", args, "->", error.trim().split("\n").at(-1));
}
await shutdown();

if (process.argv.includes("--check")) {
  const expected = JSON.stringify([
    [17, 20, 23],
    [2, null, 5],
  ]);
  const actual = JSON.stringify([results, quotients]);
  if (actual !== expected) {
    console.error(`expected ${expected}, got ${actual}`);
    process.exit(1);
  }
}
