import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { getResults, serve, shutdown } from "./index.js";

const core = JSON.stringify(pathToFileURL(join(import.meta.dirname, "../dist/index.js")).href);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sheepdog-local-async-"));
});
afterAll(async () => {
  await shutdown();
  rmSync(dir, { recursive: true, force: true });
});

it("host local with mapAsync, in a program that exits at once: every task runs and reports to a later server", async () => {
  const dbfile = join(dir, "sheepdog.sqlite");
  const port = await freePort();
  const program = join(dir, "submit.mjs");
  // As `sheepdog map --async` does: submit, leave the local tasks running, exit.
  writeFileSync(
    program,
    `import { mapAsync, py, shutdown } from ${core};
const f = py\`
def f(x):
    import time
    time.sleep(0.5)
    return x * x
\`;
const args = Array.from({ length: 7 }, (_, i) => [i]);
const id = await mapAsync(f, args, { host: "local", concurrency: 2, dbfile: ${JSON.stringify(dbfile)}, port: ${port} });
await shutdown({ keepLocalTasks: true });
console.log(id);
process.exit(0);
`,
  );
  const id = Number(execFileSync(process.execPath, [program], { timeout: 60_000 }).toString());
  const server = await serve({ dbfile, port });
  try {
    const results = await getResults(id, { dbfile, block: true });
    expect(results.map(([, r]) => r)).toEqual([0, 1, 4, 9, 16, 25, 36]);
  } finally {
    await server.close();
  }
}, 90_000);
