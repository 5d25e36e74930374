// The serialise benchmark: @sheepdog/serialise (its built dist) beside CPython's C pickle doing
// the same work, in the same run. Each measurement alternates one CPython run with one of ours,
// so that both see the same load on a shared machine; the table shows medians.
//
// Usage (from packages/serialise, after pnpm build): pnpm bench
//   = node ../../bench/serialise/run.mjs [--runs N] [--python PATH] [--no-write]
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const { decode, encode } = await import(join(here, "../../packages/serialise/dist/index.js"));

const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "15" },
    python: { type: "string", default: "/usr/bin/python3" },
    "no-write": { type: "boolean", default: false },
  },
});
const runs = Number(args.runs);
const PROTOCOL = 4;

const dir = mkdtempSync(join(tmpdir(), "sheepdog-bench-"));
const python = spawn(args.python, [join(here, "cpython.py"), dir, String(PROTOCOL)], {
  stdio: ["pipe", "pipe", "inherit"],
});
const lines = createInterface({ input: python.stdout })[Symbol.asyncIterator]();
const nextLine = async () => {
  const { value, done } = await lines.next();
  if (done) throw new Error("the CPython side exited early");
  return value;
};

// No forced GC before a run, on either side: V8 runs freshly collected code much slower for a
// while (measured 4x on the int list), which says nothing about real use.
function ours(fn) {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function theirs(key, op) {
  python.stdin.write(`${key} ${op}\n`);
  return Number(await nextLine());
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const best = (xs) => Math.min(...xs);

let info;
const load = loadavg()[0];
try {
  info = JSON.parse(await nextLine());
  for (const [key, c] of Object.entries(info.cases)) {
    const data = new Uint8Array(readFileSync(join(dir, `${key}.pickle`)));
    let encodeIt;
    let decodeIt;
    if (key === "small") {
      // CPython's separate pickles, and the values they hold.
      const pickles = decode(data);
      const values = pickles.map((one) => decode(one));
      encodeIt = () => {
        for (const v of values) encode(v);
      };
      decodeIt = () => {
        for (const one of pickles) decode(one);
      };
      c.ourBytes = values.reduce((n, v) => n + encode(v).length, 0);
    } else {
      const value = decode(data);
      encodeIt = () => encode(value);
      decodeIt = () => decode(data);
      c.ourBytes = encode(value).length;
    }
    for (let i = 0; i < 3; i++) {
      encodeIt(); // warm up
      decodeIt();
    }
    for (const op of ["encode", "decode"]) {
      const mine = [];
      const cpython = [];
      for (let i = 0; i < runs; i++) {
        cpython.push(await theirs(key, op));
        mine.push(ours(op === "encode" ? encodeIt : decodeIt));
      }
      c[op] = {
        cpython: median(cpython),
        ours: median(mine),
        cpythonBest: best(cpython),
        oursBest: best(mine),
      };
    }
  }
} finally {
  python.stdin.end();
  rmSync(dir, { recursive: true, force: true });
}

const fmt = (ms) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(1));
const rows = [];
for (const c of Object.values(info.cases)) {
  for (const op of ["encode", "decode"]) {
    const { cpython, ours: mine, cpythonBest, oursBest } = c[op];
    const ratio = mine / cpython;
    rows.push(
      `| ${c.label} | ${op} | ${fmt(cpython)} (${fmt(cpythonBest)}) | ${fmt(mine)} (${fmt(oursBest)}) | ${ratio.toFixed(2)}x | ${(oursBest / cpythonBest).toFixed(2)}x | ${ratio <= 2 ? "yes" : "**no**"} |`,
    );
  }
}
const sizes = Object.values(info.cases)
  .map((c) => `${c.label}: CPython ${c.bytes} bytes, ours ${c.ourBytes}`)
  .join("; ");
const table = [
  `Pickle protocol ${PROTOCOL}; ${runs} alternating runs per row, milliseconds as median (best); ratio = ours / CPython, of the medians and of the bests (goal: at most 2x).`,
  "Decode reads the bytes CPython wrote; encode writes the value decode returned. The last two rows are beyond the issue's three workloads: the cost per call.",
  "",
  "| workload | op | CPython C pickle | @sheepdog/serialise | ratio | ratio (best) | within 2x |",
  "|---|---|---:|---:|---:|---:|:---:|",
  ...rows,
  "",
  `Node ${process.version}, CPython ${info.python} (${info.implementation}), ${cpus().length} × ${cpus()[0]?.model.trim() ?? "cpu"}, load average ${load.toFixed(1)} at start, ${new Date().toISOString().slice(0, 10)}.`,
  `Pickle sizes: ${sizes}.`,
].join("\n");

console.log(table);
if (!args["no-write"]) {
  const out = join(here, "../results/serialise.md");
  writeFileSync(
    out,
    `# @sheepdog/serialise benchmark\n\nWritten by \`bench/serialise/run.mjs\` (\`pnpm bench\` in packages/serialise).\n\n${table}\n`,
  );
  console.log(`\nwritten to ${out}`);
}
