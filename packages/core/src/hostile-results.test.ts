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
import type { SheepdogServer } from "@sheepdog/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HealthAnswer } from "./__fixtures__/health-poller.js";
import { pollHealth } from "./__fixtures__/health-poller.js";
import {
  bigIntKeysDict,
  collidingIntDict,
  collidingIntSet,
  emptyDictsThenJunk,
  emptyLists,
  MB,
} from "./__fixtures__/hostile-pickles.js";
import type { Sheepdog } from "./index.js";
import { createSheepdog } from "./index.js";

// Anyone holding a request's token can post any bytes as a result, and the server of a
// Sheepdog checks that each decodes. These results decode in linear time yet take the decoder
// a third of a second to a second each (on this 2-core machine): the server must go on
// answering meanwhile, so it decodes them on a worker thread.

const POLL_MS = 20;
const LATE_MS = 100;
/** Each post is answered within this (a decoder gone quadratic hangs far longer). */
const POST_MS = 10_000;

/** About a megabyte each, with what the server keeps: the value, or an error. */
const heavy: { kind: string; payload: Uint8Array; decodes: boolean }[] = [
  { kind: "a million empty lists", payload: emptyLists(MB), decodes: true },
  {
    kind: "a million empty dicts, then a byte that is no opcode",
    payload: emptyDictsThenJunk(MB),
    decodes: false,
  },
  {
    kind: "a dict of 16,000 int keys that collide in V8's hash",
    payload: collidingIntDict(16_000, MB),
    decodes: true,
  },
  {
    kind: "a set of 20,000 ints that collide in V8's hash",
    payload: collidingIntSet(20_000, MB),
    decodes: true,
  },
  {
    kind: "a dict of 10,000 big-int keys sharing their low 64 bits",
    payload: bigIntKeysDict(10_000, MB),
    decodes: true,
  },
];

let store: Store;
let sheepdog: Sheepdog;
let server: SheepdogServer;

beforeAll(async () => {
  store = memoryStore();
  sheepdog = createSheepdog({ store });
  server = await sheepdog.serve({ port: 0 });
});

afterAll(async () => {
  await server?.close();
  await sheepdog?.close();
  await store?.close();
});

function newRequest(): Promise<CreatedRequest> {
  const none = new Uint8Array([0x80, 4, 0x4e, 0x2e]);
  return store.createRequest({
    func: new TextEncoder().encode(JSON.stringify({ name: "f", source: "def f():\n    pass\n" })),
    ns: new Uint8Array([0x80, 4, 0x7d, 0x2e]),
    args: heavy.map(() => none),
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

/** Posts every heavy result to a new request, one post at a time, while /health is polled. */
async function postAll(bodies: Uint8Array[]) {
  const request = await newRequest();
  const health = await pollHealth(server.url, POLL_MS);
  const replies: unknown[] = [];
  let answers: HealthAnswer[];
  try {
    for (const [index, body] of bodies.entries()) {
      const start = performance.now();
      const reply = await postReports(request, index + 1, body);
      expect(reply.status).toBe(200);
      replies.push(await reply.json());
      const ms = performance.now() - start;
      expect(ms, `posting ${heavy[index]?.kind} took ${ms.toFixed(0)} ms`).toBeLessThan(POST_MS);
    }
  } finally {
    answers = await health.stop();
  }
  return { request, replies, answers };
}

const slowestOf = (answers: HealthAnswer[]) => Math.max(...answers.map(({ ms }) => ms));

describe("a Sheepdog's server, given results that are slow to decode", () => {
  it("stores them as values or errors while /health answers within 100 ms throughout", {
    timeout: 120_000,
  }, async () => {
    const bodies = heavy.map(({ payload }, index) =>
      encodeReports([{ index, kind: "result", payload }]),
    );
    // Up to three runs: other work on a shared machine can hold this process off the CPU for
    // longer than the bound now and then; decoding on the server's event loop fails each run.
    let run = await postAll(bodies);
    for (let again = 0; again < 2 && slowestOf(run.answers) >= LATE_MS; again++) {
      run = await postAll(bodies);
    }
    const { request, replies, answers } = run;

    expect(replies).toEqual(heavy.map(() => ({ stored: 1, duplicates: 0 })));
    expect(answers.length).toBeGreaterThan(heavy.length);
    expect(answers.every(({ status }) => status === 200)).toBe(true);
    const slowest = slowestOf(answers);
    expect(slowest, `the slowest /health answer took ${slowest.toFixed(0)} ms`).toBeLessThan(
      LATE_MS,
    );

    const results = new Map((await store.getResults(request.id)).map((r) => [r.index, r.result]));
    const errors = new Map((await store.getErrors(request.id)).map((e) => [e.index, e.error]));
    heavy.forEach(({ kind, payload, decodes }, index) => {
      if (decodes) {
        expect(Buffer.from(results.get(index) ?? []).equals(payload), kind).toBe(true);
      } else {
        expect(errors.get(index), kind).toMatch(
          /^The task returned a result that Sheepdog cannot decode, so it is kept as this error instead: .*Cannot decode pickle at byte 1048574/,
        );
      }
    });
    expect(errors.size).toBe(heavy.filter(({ decodes }) => !decodes).length);
  });
});
