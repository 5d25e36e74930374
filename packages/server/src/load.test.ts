import { mkdtempSync, rmSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Store } from "@sheepdog/contracts";
import {
  decodeTaskFrames,
  encodeReports,
  hashToken,
  macKey,
  PROOF_HEADER,
  proofMatches,
  REPORTS_CONTENT_TYPE,
  signWorkerRequest,
} from "@sheepdog/contracts";
import { sqliteStore } from "@sheepdog/store-sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SheepdogServer } from "./server.js";
import { startServer } from "./server.js";

const WORKERS = 2000;
const CONCURRENCY = 64;

/** A protocol 4 pickle of the int `n` (< 65536): BININT2. */
const pickleInt = (n: number) => new Uint8Array([0x80, 4, 0x4d, n & 0xff, (n >> 8) & 0xff, 0x2e]);
/** The argument tuple `(n,)`. */
const argTuple = (n: number) =>
  new Uint8Array([0x80, 4, 0x4d, n & 0xff, (n >> 8) & 0xff, 0x85, 0x2e]);

describe("load", () => {
  let dir: string;
  let store: Store;
  let server: SheepdogServer;
  const failures: unknown[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "sheepdog-load-"));
    store = sqliteStore({ dbfile: join(dir, "load.sqlite") });
    server = await startServer({
      store,
      port: 0,
      host: "127.0.0.1",
      onError: (error) => failures.push(error),
    });
  });

  afterAll(async () => {
    await server.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** One signed worker request, its answer read whole and its proof checked (wire v2). */
  function call(
    agent: Agent,
    key: ReturnType<typeof macKey>,
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: Uint8Array,
  ): Promise<{ status: number; body: Buffer; proven: boolean }> {
    const signed = signWorkerRequest(key, {
      method,
      url: server.url,
      path,
      ...(body && { body }),
    });
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: "127.0.0.1",
          port: server.port,
          method,
          path,
          agent,
          headers: { ...headers, ...signed.headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => {
            const all = Buffer.concat(chunks);
            const status = res.statusCode ?? 0;
            const proof = res.headers[PROOF_HEADER];
            const facts = { method, path, nonce: signed.nonce, status };
            const proven = proofMatches(key, facts, all, typeof proof === "string" ? proof : null);
            resolve({ status, body: all, proven });
          });
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  }

  it(`serves ${WORKERS} simulated workers, ${CONCURRENCY} at a time: zero failures, every result stored`, async () => {
    const { id, token } = await store.createRequest({
      func: new TextEncoder().encode(JSON.stringify({ name: "f", source: "def f(x): return x" })),
      ns: new Uint8Array(),
      args: Array.from({ length: WORKERS }, (_, i) => argTuple(i)),
    });
    let announced = 0;
    const unsubscribe = server.onReport((event) => {
      if (event.request === id) announced++;
    });
    // Each simulated worker has its own connection, as workers on separate nodes would.
    const agent = new Agent({ keepAlive: false, maxSockets: CONCURRENCY });
    const key = macKey(hashToken(token));
    const problems: string[] = [];
    let next = 1;
    let stored = 0;
    const started = performance.now();
    async function worker() {
      while (next <= WORKERS) {
        const task = next++;
        const path = `/v2/requests/${id}/tasks/${task}`;
        const fetched = await call(agent, key, "GET", path, {});
        if (fetched.status !== 200 || !fetched.proven) {
          problems.push(`fetch ${task}: ${fetched.status}`);
          continue;
        }
        const frames = decodeTaskFrames(new Uint8Array(fetched.body));
        if (frames.header.first !== task - 1 || frames.args.length !== 1) {
          problems.push(`fetch ${task}: header ${JSON.stringify(frames.header)}`);
          continue;
        }
        const body = encodeReports([
          { index: frames.header.first, kind: "result", payload: pickleInt(frames.header.first) },
        ]);
        const posted = await call(
          agent,
          key,
          "POST",
          `${path}/reports`,
          { "content-type": REPORTS_CONTENT_TYPE },
          body,
        );
        if (posted.status !== 200 || !posted.proven) {
          problems.push(`post ${task}: ${posted.status}`);
          continue;
        }
        stored += (JSON.parse(posted.body.toString()) as { stored: number }).stored;
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const seconds = (performance.now() - started) / 1000;
    agent.destroy();
    unsubscribe();

    expect(problems).toEqual([]);
    expect(failures).toEqual([]);
    expect(stored).toBe(WORKERS);
    expect(announced).toBe(WORKERS);
    expect(await store.counts(id)).toEqual({ tasks: WORKERS, results: WORKERS, errors: 0 });
    const rows = await store.getResults(id);
    expect(rows.every((row, i) => Buffer.from(row.result ?? []).equals(pickleInt(i)))).toBe(true);
    // For the record, not a speed assertion (those live in bench/).
    process.stdout.write(
      `[load] ${WORKERS} workers (fetch + post), ${CONCURRENCY} at a time: ${seconds.toFixed(2)} s, ${Math.round((2 * WORKERS) / seconds)} requests/s\n`,
    );
  }, 60_000);
});
