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

/** Posts of about a megabyte each, with what the server keeps: the values, or errors. */
const heavy: { kind: string; payloads: Uint8Array[]; decodes: boolean }[] = [
  { kind: "a million empty lists", payloads: [emptyLists(MB)], decodes: true },
  {
    kind: "a million empty dicts, then a byte that is no opcode",
    payloads: [emptyDictsThenJunk(MB)],
    decodes: false,
  },
  {
    kind: "a dict of 16,000 int keys that collide in V8's hash",
    payloads: [collidingIntDict(16_000, MB)],
    decodes: true,
  },
  {
    kind: "a set of 20,000 ints that collide in V8's hash",
    payloads: [collidingIntSet(20_000, MB)],
    decodes: true,
  },
  {
    kind: "a dict of 10,000 big-int keys sharing their low 64 bits",
    payloads: [bigIntKeysDict(10_000, MB)],
    decodes: true,
  },
  {
    // Each small enough to decode at once, 10 ms each: together, on the event loop, 700 ms.
    kind: "64 sets of 3,270 ints that collide in V8's hash, 16 KB each, in one post",
    payloads: Array.from({ length: 64 }, () => collidingIntSet(3270, 16 * 1024)),
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

/** A request whose task 1 takes a report for each payload. */
function newRequest(payloads: number): Promise<CreatedRequest> {
  const none = new Uint8Array([0x80, 4, 0x4e, 0x2e]);
  return store.createRequest({
    func: new TextEncoder().encode(JSON.stringify({ name: "f", source: "def f():\n    pass\n" })),
    ns: new Uint8Array([0x80, 4, 0x7d, 0x2e]),
    args: Array.from({ length: payloads }, () => none),
    meta: { chunkSize: payloads },
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

/** Posts each heavy post to a request of its own, one at a time, while /health is polled. */
async function postAll() {
  const requests = await Promise.all(heavy.map(({ payloads }) => newRequest(payloads.length)));
  const bodies = heavy.map(({ payloads }) =>
    encodeReports(payloads.map((payload, index) => ({ index, kind: "result", payload }))),
  );
  const health = await pollHealth(server.url, POLL_MS);
  const replies: unknown[] = [];
  let answers: HealthAnswer[];
  try {
    for (const [i, body] of bodies.entries()) {
      const start = performance.now();
      const reply = await postReports(requests[i] as CreatedRequest, 1, body);
      expect(reply.status).toBe(200);
      replies.push(await reply.json());
      const ms = performance.now() - start;
      expect(ms, `posting ${heavy[i]?.kind} took ${ms.toFixed(0)} ms`).toBeLessThan(POST_MS);
    }
  } finally {
    answers = await health.stop();
  }
  return { requests, replies, answers };
}

const slowestOf = (answers: HealthAnswer[]) => Math.max(...answers.map(({ ms }) => ms));

describe("a Sheepdog's server, given results that are slow to decode", () => {
  it("stores them as values or errors while /health answers within 100 ms throughout", {
    timeout: 120_000,
  }, async () => {
    // Up to five runs: other work on a shared machine (CI runs two packages' tests at once on
    // two cores) can hold this process off the CPU for longer than the bound now and then;
    // decoding on the server's event loop fails each run (800 ms measured).
    let run = await postAll();
    for (let again = 0; again < 4 && slowestOf(run.answers) >= LATE_MS; again++) {
      run = await postAll();
    }
    const { requests, replies, answers } = run;

    expect(replies).toEqual(
      heavy.map(({ payloads }) => ({ stored: payloads.length, duplicates: 0 })),
    );
    expect(answers.length).toBeGreaterThan(heavy.length);
    expect(answers.every(({ status }) => status === 200)).toBe(true);
    const slowest = slowestOf(answers);
    expect(slowest, `the slowest /health answer took ${slowest.toFixed(0)} ms`).toBeLessThan(
      LATE_MS,
    );

    for (const [i, { kind, payloads, decodes }] of heavy.entries()) {
      const id = (requests[i] as CreatedRequest).id;
      const results = (await store.getResults(id)).filter(({ result }) => result !== null);
      const errors = await store.getErrors(id);
      if (decodes) {
        expect(errors, kind).toEqual([]);
        const same = results.map(({ index, result }) =>
          Buffer.from(result ?? []).equals(payloads[index] ?? new Uint8Array()),
        );
        expect(same, kind).toEqual(payloads.map(() => true));
      } else {
        expect(results, kind).toEqual([]);
        expect(
          errors.map(({ error }) => error),
          kind,
        ).toEqual([
          expect.stringMatching(
            /^The task returned a result that Sheepdog cannot decode, so it is kept as this error instead: .*Cannot decode pickle at byte 1048574/,
          ),
        ]);
      }
    }
  });
});
