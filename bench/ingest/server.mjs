// The server side of the ingest benchmark, in a process of its own so that the load generator
// (client.mjs) does not share its CPU: the real @sheepdog/server (built dist) over the real
// SQLite store, on a file in a temporary directory. Driven over stdin/stdout, one JSON line per
// command:
//   {"cmd":"request","tasks":N,"chunkSize":K}  -> {"id","token"}  a request of N arguments (i,),
//                                 K per array task (default 1)
//   {"cmd":"mark"}              -> {"cpuMs","rssMb"} this process's CPU time so far
//   {"cmd":"counts","id"}       -> {"tasks","results","errors"}
//   {"cmd":"stop"}              -> {"peakRssMb"} and exits
// Prints {"port"} first, once the server listens.
//
// With --bare it serves a reference instead: node:http alone, answering the same two routes
// with a fixed task and {"stored":1} after reading the post's body, no h3 and no store. That
// is the most any server on Node can do on this machine with these connections.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { startServer } from "../../packages/server/dist/index.js";
import { sqliteStore } from "../../packages/store-sqlite/dist/index.js";
import { argTuple } from "../lib/pickles.mjs";

const bare = process.argv.includes("--bare");
const dir = mkdtempSync(join(tmpdir(), "sheepdog-bench-ingest-"));
const store = sqliteStore({ dbfile: join(dir, "ingest.sqlite") });
let reported = 0;
const server = bare
  ? await bareServer()
  : await startServer({
      store,
      port: 0,
      host: "127.0.0.1",
      onReport: () => {
        reported += 1;
      },
      // As core runs it: quiet unless something is wrong.
      onError: (error) => console.error(`[ingest server] ${error}`),
    });

/** The reference: node:http with fixed answers (see the top). */
async function bareServer() {
  const header = Buffer.from(
    JSON.stringify({ version: 2, request: 1, task: 1, first: 0, count: 1 }),
  );
  const stored = Buffer.from('{"stored":1,"duplicates":0}');
  const http = createServer((req, res) => {
    if (req.method === "POST") {
      const chunks = [];
      req.on("data", (chunk) => chunks.push(chunk));
      req.on("end", () => {
        reported += 1;
        res.writeHead(200, { "content-type": "application/json", "content-length": stored.length });
        res.end(stored);
      });
      return;
    }
    const body = Buffer.alloc(4 + header.length);
    body.writeUInt32BE(header.length);
    header.copy(body, 4);
    res.writeHead(200, { "content-length": body.length });
    res.end(body);
  });
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  return {
    port: http.address().port,
    close: () => new Promise((resolve) => http.close(resolve)),
  };
}

const func = new TextEncoder().encode(
  JSON.stringify({ name: "f", source: "def f(x):\n    return x\n" }),
);

const say = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);
say({ port: server.port });
for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line);
  if (command.cmd === "request") {
    const { id, token } = await store.createRequest({
      func,
      ns: new Uint8Array(),
      args: (function* () {
        for (let i = 0; i < command.tasks; i++) yield argTuple(i);
      })(),
      meta: { chunkSize: command.chunkSize ?? 1 },
    });
    say({ id, token });
  } else if (command.cmd === "mark") {
    const cpu = process.cpuUsage();
    say({ cpuMs: (cpu.user + cpu.system) / 1000, reported });
  } else if (command.cmd === "counts") {
    say(bare ? { results: reported } : await store.counts(command.id));
  } else if (command.cmd === "stop") {
    await server.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    say({ peakRssMb: (process.resourceUsage().maxRSS * 1024) / 1e6 });
    break;
  }
}
