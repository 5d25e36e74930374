import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ReportFrame } from "@sheepdog/contracts";
import { decodeTaskFrames, encodeReports, REPORTS_CONTENT_TYPE } from "@sheepdog/contracts";
import type { SqliteStore } from "@sheepdog/store-sqlite";
import { sqliteStore } from "@sheepdog/store-sqlite";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { keyOf, workerFetch } from "./__fixtures__/worker-client.js";
import type { ReportEvent, SheepdogServer } from "./server.js";
import { startServer } from "./server.js";

const pickled = (n: number) => new Uint8Array([0x80, 4, 0x4b, n, 0x2e]);
const func = new TextEncoder().encode(JSON.stringify({ name: "f", source: "def f(x): return x" }));

let dir: string;
let dbfile: string;
let stores: SqliteStore[];
let server: SheepdogServer | undefined;

function open(): SqliteStore {
  const store = sqliteStore({ dbfile });
  stores.push(store);
  return store;
}

function post(id: number, task: number, token: string, reports: ReportFrame[]) {
  return workerFetch(
    `${server?.url}`,
    keyOf({ token }),
    `/v2/requests/${id}/tasks/${task}/reports`,
    {
      headers: { "content-type": REPORTS_CONTENT_TYPE },
      body: encodeReports(reports),
    },
  );
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "sheepdog-server-"));
  dbfile = join(dir, "sheepdog.sqlite");
  stores = [];
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  for (const store of stores) await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the server on a real SQLite store file", () => {
  it("serves requests another store on the file creates, and survives a restart on the same port", async () => {
    const events: ReportEvent[] = [];
    server = await startServer({
      store: open(),
      port: 0,
      host: "127.0.0.1",
      onReport: (e) => events.push(e),
    });
    const port = server.port;
    // Created after the server started, through another connection (as `map` in another
    // process sharing the dbfile would).
    const client = open();
    const { id, token } = await client.createRequest({
      func,
      ns: new Uint8Array(),
      args: [0, 1, 2, 3, 4].map((n) => new Uint8Array([0x80, 4, 0x4b, n, 0x85, 0x2e])),
      meta: { chunkSize: 2 },
    });
    const fetched = await workerFetch(server.url, keyOf({ token }), `/v2/requests/${id}/tasks/3`);
    expect(fetched.proven).toBe(true);
    const task = decodeTaskFrames(fetched.body);
    expect(task.header).toEqual({ version: 2, request: id, task: 3, first: 4, count: 1 });
    expect(task.func).toEqual(func);

    let reply = await post(id, 1, token, [
      { index: 0, kind: "result", payload: pickled(10) },
      { index: 1, kind: "error", payload: new TextEncoder().encode("Traceback\nKeyError: 1") },
    ]);
    expect(reply.json()).toEqual({ stored: 2, duplicates: 0 });

    // A bad post leaves the file as it was.
    const before = await client.getResults(id);
    reply = await post(id, 2, token, [
      { index: 2, kind: "result", payload: pickled(12) },
      { index: 4, kind: "result", payload: pickled(14) },
    ]);
    expect(reply.status).toBe(400);
    expect(await client.getResults(id)).toEqual(before);

    // Restart: a new server on the same port and file, through a new store.
    await server.close();
    // Let this process's fetch notice that its kept-alive connection was closed.
    await new Promise((resolve) => setTimeout(resolve, 50));
    server = await startServer({ store: open(), port, host: "127.0.0.1" });
    reply = await post(id, 2, token, [
      { index: 2, kind: "result", payload: pickled(12) },
      { index: 3, kind: "result", payload: pickled(13) },
    ]);
    // The restarted server knows the request's key from the file: its answers are proven.
    expect(reply.proven).toBe(true);
    expect(reply.json()).toEqual({ stored: 2, duplicates: 0 });
    reply = await post(id, 1, token, [{ index: 0, kind: "result", payload: pickled(99) }]);
    expect(reply.json()).toEqual({ stored: 0, duplicates: 1 });

    expect(await client.counts(id)).toEqual({ tasks: 5, results: 3, errors: 1 });
    const results = await client.getResults(id);
    expect(results.map((r) => (r.result ? r.result[3] : null))).toEqual([10, null, 12, 13, null]);
    expect(events).toEqual([
      { request: id, index: 0, kind: "result" },
      { request: id, index: 1, kind: "error" },
    ]);
  });

  it("keeps one request's token away from another's tasks", async () => {
    const store = open();
    server = await startServer({ store, port: 0, host: "127.0.0.1" });
    const a = await store.createRequest({ func, ns: new Uint8Array(), args: [pickled(1)] });
    const b = await store.createRequest({ func, ns: new Uint8Array(), args: [pickled(2)] });
    const read = await workerFetch(server.url, keyOf(a), `/v2/requests/${b.id}/tasks/1`);
    expect(read.status).toBe(401);
    const write = await post(b.id, 1, a.token, [{ index: 0, kind: "result", payload: pickled(7) }]);
    expect(write.status).toBe(401);
    expect(await store.counts(b.id)).toEqual({ tasks: 1, results: 0, errors: 0 });
  });
});
