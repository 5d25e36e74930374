// Server ingest: simulated workers (client.mjs) against the real server and SQLite store
// (server.mjs), each in its own process, over loopback, at several concurrencies.
//
// Usage: node bench/ingest/run.mjs [--seconds 5] [--concurrency 1,8,32,128]
//          [--connection close|keep-alive|both] [--cpu-prof DIR]
// Prints one JSON line per measurement; bench/run.mjs writes them into the report.
import { execFile, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const run = promisify(execFile);

/** Starts server.mjs; resolves a handle that sends commands and reads their one-line answers. */
export async function startIngestServer({ cpuProf, bare = false } = {}) {
  const flags = cpuProf ? ["--cpu-prof", "--cpu-prof-dir", cpuProf] : [];
  const child = spawn(
    process.execPath,
    [...flags, join(here, "server.mjs"), ...(bare ? ["--bare"] : [])],
    {
      stdio: ["pipe", "pipe", "inherit"],
    },
  );
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const read = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error("the ingest server exited early");
    return JSON.parse(value);
  };
  const { port } = await read();
  return {
    port,
    bare,
    async send(command) {
      child.stdin.write(`${JSON.stringify(command)}\n`);
      return read();
    },
    async stop() {
      child.stdin.end(`${JSON.stringify({ cmd: "stop" })}\n`);
      const last = await read();
      await new Promise((resolve) =>
        child.exitCode !== null ? resolve() : child.once("exit", resolve),
      );
      return last;
    },
  };
}

/** One measurement at one concurrency; a fresh request, so every task is new to the store. */
export async function measureIngest(server, { concurrency, seconds, connection }) {
  // Enough tasks for 40,000 round trips/s over the warm-up and the measurement (the bare
  // reference passes 20,000 on a quiet machine).
  const tasks = Math.ceil((seconds + 2) * 40_000);
  const { id, token } = await server.send({ cmd: "request", tasks });
  const before = await server.send({ cmd: "mark" });
  const { stdout } = await run(process.execPath, [
    join(here, "client.mjs"),
    "--port",
    String(server.port),
    "--request",
    String(id),
    // A token may start with "-" (base64url), which parseArgs would take for an option.
    `--token=${token}`,
    "--tasks",
    String(tasks),
    "--concurrency",
    String(concurrency),
    "--seconds",
    String(seconds),
    "--connection",
    connection,
  ]);
  const after = await server.send({ cmd: "mark" });
  const result = JSON.parse(stdout);
  const counts = await server.send({ cmd: "counts", id });
  // Every round trip that ended well stored exactly one result, warm-up included (the bare
  // reference counts the posts it answered, across its measurements).
  const expected = result.tasksUsed - result.failures;
  if (!server.bare && counts.results !== expected) {
    throw new Error(`stored ${counts.results} results for ${expected} good round trips`);
  }
  // Server CPU per round trip over the whole run (warm-up included), in ms.
  result.serverCpuMsPerRoundTrip = (after.cpuMs - before.cpuMs) / result.tasksUsed;
  result.stored = counts.results;
  return result;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string", default: "5" },
      concurrency: { type: "string", default: "1,8,32,128" },
      connection: { type: "string", default: "close" },
      "cpu-prof": { type: "string" },
      bare: { type: "boolean", default: false },
    },
  });
  const connections = values.connection === "both" ? ["close", "keep-alive"] : [values.connection];
  const server = await startIngestServer({ cpuProf: values["cpu-prof"], bare: values.bare });
  try {
    for (const connection of connections) {
      for (const concurrency of values.concurrency.split(",").map(Number)) {
        const result = await measureIngest(server, {
          concurrency,
          seconds: Number(values.seconds),
          connection,
        });
        console.log(JSON.stringify(result));
      }
    }
  } finally {
    const { peakRssMb } = await server.stop();
    console.log(JSON.stringify({ serverPeakRssMb: peakRssMb }));
  }
}
