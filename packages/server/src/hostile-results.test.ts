import { once } from "node:events";
import { Worker } from "node:worker_threads";
import type { CreatedRequest, Store } from "@sheepdog/contracts";
import {
  encodeReports,
  hashToken,
  macKey,
  REPORTS_CONTENT_TYPE,
  signWorkerRequest,
  WIRE_VERSION,
} from "@sheepdog/contracts";
import { memoryStore } from "@sheepdog/contracts/testing";
import { decode } from "@sheepdog/serialise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SheepdogServer } from "./server.js";
import { startServer } from "./server.js";

// A worker, or anyone holding a request's token, can post any bytes as a result. Here the
// server checks each result by decoding it on its one event loop (a checkResult that answers
// at once), so this test is about the decoder: these inputs once made it quadratic or worse (a
// 64 KB FLOAT took 6 s), and now each decodes in linear time, well under the bound below even
// on a loaded machine. The 100 ms bound of issue 19 is held by the check a Sheepdog gives its
// server, which moves slow decodes off the loop: packages/core/src/hostile-results.test.ts
// posts these kinds and those that are linear yet slow (a million objects, keys that collide in
// V8's hash) to it and checks /health answers within 100 ms throughout.

const MB = 1 << 20;
/**
 * How often /health is asked, how late an answer may be (a bound on decoding a megabyte
 * inline, that a super-linear decoder misses by seconds), and how long a post may take.
 */
const POLL_MS = 20;
const LATE_MS = 500;
const POST_MS = 1000;

type Part = string | number[] | Uint8Array;

const concat = (parts: Part[]): Uint8Array =>
  new Uint8Array(
    Buffer.concat(
      parts.map((p) =>
        typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p as number[]),
      ),
    ),
  );

const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];

/** A memoized value, then `callable` REDUCEd on `(value, ...extra)` over and over, popped. */
function rebuiltOverAndOver(value: Part[], callable: string, times: number, extra: number[] = []) {
  const parts: Part[] = [[0x80, 2], ...value, [0x94], `c${callable}\n`, [0x94]];
  for (let i = 0; i < times; i++) parts.push([0x68, 1, 0x28, 0x68, 0, ...extra, 0x74, 0x52, 0x30]);
  parts.push("N.");
  return concat(parts);
}

const latin1 = [0x8c, 6, ...Buffer.from("latin1")];

/**
 * Results built against the decoder, most of which once took it seconds to minutes: about a
 * megabyte each, starting with PROTO and ending with STOP as the server requires.
 */
const hostile: { kind: string; payload: Uint8Array; decodes: boolean }[] = [
  // First a small one: a quadratic parser takes seconds on it (and minutes on a megabyte).
  {
    kind: "FLOAT digits then junk, 64 KB",
    payload: concat([[0x80, 2], "F", "1".repeat(64 * 1024), "x\n."]),
    decodes: false,
  },
  {
    kind: "FLOAT digits then junk",
    payload: concat([[0x80, 2], "F", "1".repeat(MB), "x\n."]),
    decodes: false,
  },
  {
    kind: "FLOAT fraction, then an exponent without digits",
    payload: concat([[0x80, 2], "F.", "2".repeat(MB), "e+\n."]),
    decodes: false,
  },
  {
    kind: "INT of a megabyte of digits",
    payload: concat([[0x80, 2], "I", "3".repeat(MB), "\n."]),
    decodes: false,
  },
  {
    kind: "LONG digits then junk",
    payload: concat([[0x80, 2], "L", "4".repeat(MB), "xL\n."]),
    decodes: false,
  },
  {
    kind: "GET index of a megabyte of digits",
    payload: concat([[0x80, 2], "g", "5".repeat(MB), "\n."]),
    decodes: false,
  },
  {
    kind: "BINUNICODE8 longer than the body",
    payload: concat([[0x80, 4, 0x8d, 0, 0, 0, 0, 0, 0, 0, 1], "u".repeat(MB), "."]),
    decodes: false,
  },
  {
    kind: "one shared bytes rebuilt as a bytearray",
    payload: rebuiltOverAndOver(
      [[0x42, ...u32(500_000)], "b".repeat(500_000)],
      "builtins\nbytearray",
      60_000,
    ),
    decodes: false,
  },
  {
    kind: "one shared str rebuilt as bytes",
    payload: rebuiltOverAndOver(
      [[0x58, ...u32(500_000)], "t".repeat(500_000)],
      "_codecs\nencode",
      30_000,
      latin1,
    ),
    decodes: false,
  },
  {
    // A quarter of a megabyte: refusing it still costs a set of every item the budget allows.
    kind: "one shared list rebuilt as a set",
    payload: rebuiltOverAndOver(
      ["(", ...Array.from({ length: 50_000 }, () => [0x4b, 1]), "l"],
      "builtins\nset",
      20_000,
    ),
    decodes: false,
  },
  {
    kind: "STRING of escapes",
    payload: concat([[0x80, 2], "S'", "\\x41\\102".repeat(MB / 8), "'\n."]),
    decodes: true,
  },
  {
    kind: "UNICODE of backslashes",
    payload: concat([[0x80, 2], "V", "\\".repeat(MB), "\n."]),
    decodes: true,
  },
];

/** Why a result cannot be decoded, or undefined (as core's check says of a small result). */
function undecodable(payload: Uint8Array): string | undefined {
  try {
    decode(payload);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/**
 * Asks /health every POLL_MS from a worker thread until stopped, so that what is measured is
 * the server's event loop alone: each answer's time from request to response.
 */
const POLLER = `
const { parentPort, workerData } = require("node:worker_threads");
const answers = [];
let stopped = false;
parentPort.once("message", () => { stopped = true; });
(async () => {
  await (await fetch(workerData.url + "/health")).arrayBuffer(); // this thread's own warm-up
  parentPort.postMessage("ready");
  while (!stopped) {
    const start = performance.now();
    const response = await fetch(workerData.url + "/health");
    await response.arrayBuffer();
    answers.push({ status: response.status, ms: performance.now() - start });
    await new Promise((resolve) => setTimeout(resolve, workerData.interval));
  }
  parentPort.postMessage(answers);
  parentPort.close();
})();
`;

interface HealthAnswer {
  status: number;
  ms: number;
}

/** Starts polling; resolves once the poller is ready. */
async function pollHealth(url: string) {
  const worker = new Worker(POLLER, { eval: true, workerData: { url, interval: POLL_MS } });
  await once(worker, "message");
  return {
    /** Stops polling; every answer. */
    async stop(): Promise<HealthAnswer[]> {
      const answers = once(worker, "message") as Promise<[HealthAnswer[]]>;
      worker.postMessage("stop");
      const [list] = await answers;
      await worker.terminate();
      return list;
    },
  };
}

let store: Store;
let server: SheepdogServer;

beforeAll(async () => {
  store = memoryStore();
  server = await startServer({ store, port: 0, host: "127.0.0.1", checkResult: undecodable });
});

afterAll(async () => {
  await server?.close();
  await store?.close();
});

/** A request with one task per hostile result. */
function newRequest(): Promise<CreatedRequest> {
  const none = new Uint8Array([0x80, 4, 0x4e, 0x2e]);
  return store.createRequest({
    func: new TextEncoder().encode(JSON.stringify({ name: "f", source: "def f():\n    pass\n" })),
    ns: new Uint8Array([0x80, 4, 0x7d, 0x2e]),
    args: hostile.map(() => none),
    meta: {},
  });
}

/** A report post as a worker makes it: signed with the request's key (wire protocol v2). */
function postReports(request: CreatedRequest, task: number, body: Uint8Array) {
  const path = `/v${WIRE_VERSION}/requests/${request.id}/tasks/${task}/reports`;
  const key = macKey(hashToken(request.token));
  const { headers } = signWorkerRequest(key, { method: "POST", url: server.url, path, body });
  return fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { ...headers, "content-type": REPORTS_CONTENT_TYPE },
    body,
  });
}

/**
 * Posts every hostile result to a new request, one post at a time, while /health is polled.
 * Each post must be answered within POST_MS, so that a decoder gone quadratic fails here on the
 * small first result instead of hanging on the megabytes.
 */
async function postAll(bodies: Uint8Array[]) {
  const request = await newRequest();
  const health = await pollHealth(server.url);
  const replies: unknown[] = [];
  let answers: HealthAnswer[];
  try {
    for (const [index, body] of bodies.entries()) {
      const start = performance.now();
      const reply = await postReports(request, index + 1, body);
      expect(reply.status).toBe(200);
      replies.push(await reply.json());
      const ms = performance.now() - start;
      expect(ms, `posting ${hostile[index]?.kind} took ${ms.toFixed(0)} ms`).toBeLessThan(POST_MS);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    answers = await health.stop();
  }
  return { request, replies, answers };
}

describe("results built to stall the decoder", () => {
  it("are answered and stored while /health answers within half a second throughout (linear decoding)", {
    timeout: 60_000,
  }, async () => {
    for (const { payload } of hostile) {
      expect(payload.length).toBeGreaterThanOrEqual(64 * 1024);
      expect(payload.length).toBeLessThan(2 * MB);
    }
    const bodies = hostile.map(({ payload }, index) =>
      encodeReports([{ index, kind: "result", payload }]),
    );
    // Up to three runs: other work on a shared machine can hold this process off the CPU for
    // longer than the bound now and then; a decoder that is slow on these inputs fails each run.
    let run = await postAll(bodies);
    const slowestOf = (answers: HealthAnswer[]) => Math.max(...answers.map(({ ms }) => ms));
    for (let again = 0; again < 2 && slowestOf(run.answers) >= LATE_MS; again++) {
      run = await postAll(bodies);
    }
    const { request, replies, answers } = run;

    expect(replies).toEqual(hostile.map(() => ({ stored: 1, duplicates: 0 })));
    expect(answers.length).toBeGreaterThan(hostile.length);
    expect(answers.every(({ status }) => status === 200)).toBe(true);
    const slowest = slowestOf(answers);
    expect(slowest, `the slowest /health answer took ${slowest.toFixed(0)} ms`).toBeLessThan(
      LATE_MS,
    );

    const results = new Map((await store.getResults(request.id)).map((r) => [r.index, r.result]));
    const errors = new Map((await store.getErrors(request.id)).map((e) => [e.index, e.error]));
    hostile.forEach(({ kind, payload, decodes }, index) => {
      if (decodes) {
        expect(Buffer.from(results.get(index) ?? []).equals(payload), kind).toBe(true);
      } else {
        expect(errors.get(index), kind).toMatch(/Cannot decode pickle at byte \d+/);
      }
    });
    expect(errors.size).toBe(hostile.filter(({ decodes }) => !decodes).length);
  });
});
