// The deploy-ssh benchmark, on the test cluster's real sshd (127.0.0.1): connect time, command
// latency over the reused connection (and, for contrast, OpenSSH's `ssh host true`, a new
// connection per command), command throughput with many at once, and SFTP upload/readFile
// speed. Prints a markdown table and writes it to bench/results/deploy-ssh.md.
//
// Usage (from packages/deploy-ssh, after `sudo bash tooling/testcluster/up` and a build):
//   pnpm bench        (= node ../../bench/deploy-ssh/run.mjs)
// Options: --runs N (default 5), --no-write.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const { connect } = await import(join(here, "../../packages/deploy-ssh/dist/index.js"));
const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    "no-write": { type: "boolean", default: false },
  },
});
const runs = Number(args.runs);

const factsPath =
  process.env.SHEEPDOG_TESTCLUSTER_FILE ?? "/var/lib/sheepdog-testcluster/cluster.json";
if (!existsSync(factsPath)) {
  console.error(`No test cluster (${factsPath}). Start it with: sudo bash tooling/testcluster/up`);
  process.exit(1);
}
const cluster = JSON.parse(readFileSync(factsPath, "utf8"));
const options = {
  host: cluster.host,
  sshPort: cluster.port,
  sshUser: cluster.user,
  sshKeyfile: cluster.privateKeyPath,
  sshKnownHosts: cluster.knownHostsPath,
  sshConfig: "/dev/null",
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
async function time(fn) {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}
async function medianOf(fn) {
  const times = [];
  for (let i = 0; i < runs; i++) times.push(await time(fn));
  return median(times);
}

const rows = [];
const connectMs = await medianOf(async () => {
  const remote = await connect(options);
  await remote.close();
});
rows.push(["connect (key exchange + login)", `${connectMs.toFixed(1)} ms`]);

const remote = await connect(options);
const sequential = 50;
const execMs = await medianOf(async () => {
  for (let i = 0; i < sequential; i++) await remote.exec("true");
});
rows.push([
  '`exec("true")`, one after another, reused connection',
  `${(execMs / sequential).toFixed(2)} ms each`,
]);

const opensshMs = await medianOf(async () => {
  for (let i = 0; i < 10; i++) {
    execFileSync("ssh", [
      "-F",
      "/dev/null",
      "-i",
      cluster.privateKeyPath,
      "-o",
      "BatchMode=yes",
      "-o",
      `UserKnownHostsFile=${cluster.knownHostsPath}`,
      "-o",
      "StrictHostKeyChecking=yes",
      "-p",
      String(cluster.port),
      `${cluster.user}@${cluster.host}`,
      "true",
    ]);
  }
});
rows.push([
  "OpenSSH `ssh host true`, a new connection each (for contrast)",
  `${(opensshMs / 10).toFixed(2)} ms each`,
]);

const many = 200;
const concurrentMs = await medianOf(() =>
  Promise.all(Array.from({ length: many }, () => remote.exec("true"))),
);
rows.push([
  `${many} \`exec("true")\` at once (8 channels)`,
  `${(many / (concurrentMs / 1000)).toFixed(0)} commands/s`,
]);

const size = 32 * 1024 * 1024;
const data = randomBytes(size);
const path = `.sheepdog-bench-${process.pid}.bin`;
const uploadMs = await medianOf(() => remote.upload(path, data));
rows.push([
  `upload ${size / 1024 / 1024} MiB over SFTP`,
  `${(size / 1024 / 1024 / (uploadMs / 1000)).toFixed(0)} MiB/s`,
]);
let back;
const readMs = await medianOf(async () => {
  back = await remote.readFile(path);
});
if (!Buffer.from(back).equals(data)) throw new Error("readFile returned other bytes");
rows.push([
  `readFile ${size / 1024 / 1024} MiB over SFTP`,
  `${(size / 1024 / 1024 / (readMs / 1000)).toFixed(0)} MiB/s`,
]);
await remote.exec(`rm -f ${path}`);
await remote.close();

const table = [
  `deploy-ssh on the test cluster's sshd (OpenSSH over 127.0.0.1), Node ${process.version}, ${cpus().length} cores, median of ${runs} runs.`,
  "",
  "| what | result |",
  "| --- | --- |",
  ...rows.map(([what, result]) => `| ${what} | ${result} |`),
  "",
].join("\n");
console.log(table);
if (!args["no-write"]) writeFileSync(join(here, "../results/deploy-ssh.md"), table);
