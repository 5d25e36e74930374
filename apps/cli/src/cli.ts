#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { main } from "./main.js";

// A reader that stops early (`sheepdog results 1 | head -1`) closes the pipe: the rest of the
// output goes nowhere, quietly, and the command ends as it would have.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
  });
}

const interrupt = new AbortController();
process.on("SIGINT", () => {
  if (interrupt.signal.aborted) process.exit(130);
  process.stderr.write("\n[sheepdog] Interrupted; stopping (Ctrl-C again to quit at once).\n");
  interrupt.abort();
});

const code = await main({
  argv: process.argv.slice(2),
  env: process.env,
  cwd: process.cwd(),
  stdout: process.stdout,
  stderr: process.stderr,
  readStdin: () => readFileSync(0, "utf8"),
  signal: interrupt.signal,
});
process.exitCode = code;
// Everything is closed by now; should a stray handle remain, it must not keep the command alive.
setTimeout(() => process.exit(code), 2000).unref();
