import { request as httpRequest } from "node:http";
import { connect, createServer as createNetServer } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import type { CreatedRequest, MacKey, ReportFrame, Store } from "@sheepdog/contracts";
import {
  BODY_HASH_HEADER,
  bodyHash,
  decodeTaskFrames,
  encodeFrames,
  encodeReports,
  logCutMark,
  MAX_LOG_BYTES,
  PROOF_HEADER,
  REPORTS_CONTENT_TYPE,
  SheepdogError,
  signWorkerRequest,
  TASK_CONTENT_TYPE,
  WIRE_VERSION,
} from "@sheepdog/contracts";
import { memoryStore } from "@sheepdog/contracts/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { countingStore } from "./__fixtures__/counting-store.js";
import type { WorkerAnswer } from "./__fixtures__/worker-client.js";
import { keyOf, workerFetch } from "./__fixtures__/worker-client.js";
import type { ReportEvent, SheepdogServer } from "./server.js";
import { startServer } from "./server.js";

const text = (value: string) => new TextEncoder().encode(value);
/** A protocol 4 pickle of the small int `n`. */
const pickled = (n: number) => new Uint8Array([0x80, 4, 0x4b, n, 0x2e]);
/** A protocol 4 pickle of the int `n` (BININT, four bytes). */
const wide = (n: number) => {
  const bytes = new Uint8Array([0x80, 4, 0x4a, 0, 0, 0, 0, 0x2e]);
  new DataView(bytes.buffer).setInt32(3, n, true);
  return bytes;
};
const func = text(JSON.stringify({ name: "f", source: "def f(x):\n    return x\n" }));
const ns = new Uint8Array([0x80, 4, 0x7d, 0x94, 0x2e]);

let store: Store;
let calls: ReturnType<typeof countingStore>["calls"];
let server: SheepdogServer;
let events: ReportEvent[];
let errors: unknown[];

async function newRequest(tasks: number, chunkSize?: number): Promise<CreatedRequest> {
  return store.createRequest({
    func,
    ns,
    args: Array.from({ length: tasks }, (_, i) => pickled(i)),
    meta: chunkSize === undefined ? {} : { chunkSize },
  });
}

function taskPath(request: number | string, task: number | string): string {
  return `/v2/requests/${request}/tasks/${task}`;
}

function taskUrl(request: number | string, task: number | string): string {
  return `${server.url}${taskPath(request, task)}`;
}

/** A task fetch signed with `key` (a request's own, unless a test says otherwise). */
function getTask(request: number | string, task: number | string, key: MacKey) {
  return workerFetch(server.url, key, taskPath(request, task));
}

function post(
  request: number | string,
  task: number | string,
  key: MacKey,
  body: Uint8Array,
  contentType: string = REPORTS_CONTENT_TYPE,
) {
  return workerFetch(server.url, key, `${taskPath(request, task)}/reports`, {
    body,
    headers: { "content-type": contentType },
  });
}

function postReports(request: CreatedRequest, task: number, reports: ReportFrame[]) {
  return post(request.id, task, keyOf(request), encodeReports(reports));
}

/** An answer to a request that was not signed (never proven). */
async function unsigned(response: Response): Promise<WorkerAnswer> {
  const body = new Uint8Array(await response.arrayBuffer());
  return {
    status: response.status,
    headers: response.headers,
    body,
    proven: false,
    json: () => JSON.parse(new TextDecoder().decode(body)),
  };
}

async function expectError(answer: WorkerAnswer, status: number): Promise<string> {
  expect(answer.status).toBe(status);
  expect(answer.headers.get("content-type")).toMatch(/^application\/json/);
  const body = answer.json() as Record<string, unknown>;
  expect(
    Object.keys(body)
      .filter((k) => k !== "serverTime")
      .sort(),
  ).toEqual(["message", "status"]);
  expect(body.status).toBe(status);
  expect(typeof body.message).toBe("string");
  return body.message as string;
}

beforeEach(async () => {
  ({ store, calls } = countingStore(memoryStore()));
  events = [];
  errors = [];
  server = await startServer({
    store,
    port: 0,
    host: "127.0.0.1",
    onReport: (event) => events.push(event),
    onError: (error) => errors.push(error),
  });
});

afterEach(async () => {
  await server.close();
});

describe("startServer", () => {
  it("answers /health", async () => {
    const response = await fetch(`${server.url}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true, version: 2 });
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    expect(server.port).toBeGreaterThan(0);
    expect((await fetch(`${server.url}/health`, { method: "HEAD" })).status).toBe(200);
  });

  it("serves a task's header, function, namespace and arguments, proven", async () => {
    const request = await newRequest(3);
    const response = await getTask(request.id, 2, keyOf(request));
    expect(response.status).toBe(200);
    expect(response.proven).toBe(true);
    expect(response.headers.get("content-type")).toBe(TASK_CONTENT_TYPE);
    expect(response.headers.get("content-length")).toMatch(/^\d+$/);
    const task = decodeTaskFrames(response.body);
    expect(task.header).toEqual({ version: 2, request: request.id, task: 2, first: 1, count: 1 });
    expect(task.func).toEqual(func);
    expect(task.ns).toEqual(ns);
    expect(task.args).toEqual([pickled(1)]);
  });

  it("answers the worker routes alike on the direct path and through h3", async () => {
    // A plain path is answered straight from node:http; a query string sends it through h3.
    const request = await newRequest(3);
    const key = keyOf(request);
    const answers = [];
    for (const suffix of ["", "?via=h3"]) {
      const ok = await workerFetch(server.url, key, `${taskPath(request.id, 2)}${suffix}`);
      const refused = await unsigned(await fetch(`${taskUrl(request.id, 2)}${suffix}`));
      const missing = await workerFetch(server.url, key, `${taskPath(request.id, 9)}${suffix}`);
      answers.push([
        [ok.status, ok.proven, ok.headers.get("content-type"), ok.headers.get("cache-control")],
        [...ok.body],
        [refused.status, refused.headers.get("www-authenticate"), refused.json()],
        [missing.status, missing.proven, missing.headers.get("content-type"), missing.json()],
      ]);
    }
    expect(answers[0]).toEqual(answers[1]);
    expect(answers[0]?.[0]).toEqual([200, true, TASK_CONTENT_TYPE, "no-store"]);
    expect(answers[0]?.[3]?.[1]).toBe(true);
    const body = encodeReports([{ index: 2, kind: "result", payload: pickled(7) }]);
    const posted = await workerFetch(server.url, key, `${taskPath(request.id, 3)}/reports?via=h3`, {
      body,
      headers: { "content-type": REPORTS_CONTENT_TYPE },
    });
    expect(posted.proven).toBe(true);
    expect(posted.json()).toEqual({ stored: 1, duplicates: 0 });
  });

  it("maps array tasks to chunks of chunkSize arguments", async () => {
    const request = await newRequest(5, 2);
    const ranges: [number, number, number[]][] = [];
    for (const task of [1, 2, 3]) {
      const response = await getTask(request.id, task, keyOf(request));
      const decoded = decodeTaskFrames(response.body);
      ranges.push([
        decoded.header.first,
        decoded.header.count,
        decoded.args.map((a) => a[3] ?? -1),
      ]);
    }
    expect(ranges).toEqual([
      [0, 2, [0, 1]],
      [2, 2, [2, 3]],
      [4, 1, [4]],
    ]);
    await expectError(await getTask(request.id, 4, keyOf(request)), 404);
  });

  it("reads small arguments of one-argument tasks 64 at a time, each served right", async () => {
    const request = await newRequest(150);
    const order = Array.from({ length: 150 }, (_, i) => i + 1).sort(
      (a, b) => ((a * 37) % 150) - ((b * 37) % 150),
    );
    const served = await Promise.all(
      [...order, 5, 70].map(async (task) => {
        const response = await getTask(request.id, task, keyOf(request));
        const decoded = decodeTaskFrames(response.body);
        return [task, decoded.header.first, decoded.args] as const;
      }),
    );
    for (const [task, first, args] of served) {
      expect(first).toBe(task - 1);
      expect(args).toEqual([pickled(task - 1)]);
    }
    // The first task alone, three blocks (0-63, 64-127, 128-149), and at most the two repeats.
    expect(calls.getArgs).toBeGreaterThanOrEqual(4);
    expect(calls.getArgs).toBeLessThanOrEqual(6);
  });

  it("reads large arguments one task at a time", async () => {
    const big = (i: number) =>
      new Uint8Array([0x80, 4, 0x42, ...new Uint8Array(2000).fill(i), 0x2e]);
    const request = await store.createRequest({
      func,
      ns,
      args: Array.from({ length: 10 }, (_, i) => big(i)),
      meta: {},
    });
    for (let task = 1; task <= 10; task++) {
      const response = await getTask(request.id, task, keyOf(request));
      const decoded = decodeTaskFrames(response.body);
      expect(decoded.args).toEqual([big(task - 1)]);
    }
    expect(calls.getArgs).toBe(10);
  });

  it("reads a large task's arguments 4,096 at a time, and serves them all in order", async () => {
    const count = 10_000;
    const request = await store.createRequest({
      func,
      ns,
      args: Array.from({ length: count }, (_, i) => wide(i)),
      meta: { chunkSize: count },
    });
    const response = await getTask(request.id, 1, keyOf(request));
    const decoded = decodeTaskFrames(response.body);
    expect(decoded.header).toMatchObject({ first: 0, count });
    expect(decoded.args).toEqual(Array.from({ length: count }, (_, i) => wide(i)));
    // 4,096, 4,096 and 1,808: three reads, never all the views at once.
    expect(calls.getArgs).toBe(3);
  });

  it("reads a request from the store once, then from its cache", async () => {
    const request = await newRequest(4);
    await Promise.all([1, 2, 3, 4].map((t) => getTask(request.id, t, keyOf(request))));
    await postReports(request, 1, [{ index: 0, kind: "result", payload: pickled(9) }]);
    expect(calls.getRequest).toBe(1);
  });

  it("holds a held request's calls until its write settles, then serves them", async () => {
    const request = await newRequest(2);
    const lost = await newRequest(1);
    // The store has a request only once its write ends, as SQLite's readers do.
    const unwritten = new Set([request.id, lost.id]);
    const writing: Store = Object.create(store, {
      getRequest: {
        value: async (id: number) => {
          if (unwritten.has(id)) {
            throw new SheepdogError("REQUEST_NOT_FOUND", "test", `No request ${id}.`);
          }
          return store.getRequest(id);
        },
      },
    });
    await using held = await startServer({ store: writing, port: 0, host: "127.0.0.1" });
    const fetchTask = (of: CreatedRequest, task: number) =>
      workerFetch(held.url, keyOf(of), taskPath(of.id, task));
    // Unknown: refused as any request whose key the server cannot find.
    expect((await fetchTask(request, 1)).status).toBe(401);

    let endWrite = () => {};
    held.holdRequest(
      request.id,
      new Promise<void>((resolve) => {
        endWrite = () => {
          unwritten.delete(request.id);
          resolve();
        };
      }),
    );
    const answering = fetchTask(request, 1);
    const early = await Promise.race([answering, delay(300).then(() => "still held")]);
    expect(early).toBe("still held");
    endWrite();
    const answer = await answering;
    expect(answer.status).toBe(200);
    expect(decodeTaskFrames(answer.body).args).toEqual([pickled(0)]);

    // A write that fails lets the calls go too: they find no request.
    held.holdRequest(lost.id, Promise.reject(new Error("disk full")));
    expect((await fetchTask(lost, 1)).status).toBe(401);
  });

  it("stores reports, announces them, and lets the first report of a task win", async () => {
    const request = await newRequest(4, 2);
    let response = await postReports(request, 2, [
      { index: 2, kind: "result", payload: pickled(20) },
      { index: 3, kind: "error", payload: text("Traceback\nValueError: ü") },
    ]);
    expect(response.status).toBe(200);
    expect(response.proven).toBe(true);
    expect(response.json()).toEqual({ stored: 2, duplicates: 0 });
    response = await postReports(request, 2, [
      { index: 2, kind: "error", payload: text("late") },
      { index: 3, kind: "result", payload: pickled(30) },
    ]);
    expect(response.json()).toEqual({ stored: 0, duplicates: 2 });
    expect(await store.counts(request.id)).toEqual({ tasks: 4, results: 1, errors: 1 });
    const results = await store.getResults(request.id);
    expect(results[2]?.result).toEqual(pickled(20));
    expect(await store.getErrors(request.id)).toMatchObject([
      { index: 3, error: "Traceback\nValueError: ü" },
    ]);
    expect(events).toEqual([
      { request: request.id, index: 2, kind: "result" },
      { request: request.id, index: 3, kind: "error" },
    ]);
  });

  it("writes a post with the store's batch write when it has one", async () => {
    const request = await newRequest(3, 3);
    const response = await postReports(request, 1, [
      { index: 0, kind: "result", payload: pickled(1) },
      { index: 2, kind: "error", payload: text("boom") },
    ]);
    expect(response.json()).toEqual({ stored: 2, duplicates: 0 });
    expect(calls.putReports).toBe(1);
    expect(calls.putResult ?? 0).toBe(0);
    expect(events.map((e) => e.index)).toEqual([0, 2]);
  });

  it("writes reports one by one with a store that has no batch write", async () => {
    await server.close();
    ({ store, calls } = countingStore(memoryStore(), { batch: false }));
    server = await startServer({ store, port: 0, onReport: (event) => events.push(event) });
    const request = await newRequest(3, 3);
    let response = await postReports(request, 1, [
      { index: 0, kind: "result", payload: pickled(1) },
      { index: 2, kind: "error", payload: text("boom") },
    ]);
    expect(response.json()).toEqual({ stored: 2, duplicates: 0 });
    response = await postReports(request, 1, [
      { index: 0, kind: "error", payload: text("late") },
      { index: 1, kind: "result", payload: pickled(5) },
    ]);
    expect(response.json()).toEqual({ stored: 1, duplicates: 1 });
    expect([calls.putResult, calls.putError]).toEqual([2, 2]);
    expect(await store.counts(request.id)).toEqual({ tasks: 3, results: 2, errors: 1 });
    expect(events.map((e) => e.index)).toEqual([0, 2, 1]);
  });
});

/** Everything of an answer but its Date header. */
function comparable(answer: WorkerAnswer) {
  const headers = [...answer.headers].filter(([name]) => name !== "date");
  return { status: answer.status, headers, body: [...answer.body] };
}

/** Sends `head` (and the start of a body) on a raw socket; resolves with the whole answer. */
function rawExchange(head: string, bodyStart = ""): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, "127.0.0.1", () => socket.write(head + bodyStart));
    let reply = "";
    socket.setEncoding("latin1").on("data", (chunk: string) => {
      reply += chunk;
    });
    socket.on("close", () => resolve(reply));
    socket.on("error", reject);
    socket.setTimeout(5_000, () => {
      socket.destroy();
      reject(new Error(`no answer; so far: ${JSON.stringify(reply)}`));
    });
  });
}

describe("authentication", () => {
  it("answers unsigned and wrongly signed requests with one 401, whether or not the request exists", async () => {
    const request = await newRequest(1);
    const key = keyOf(request);
    const other = keyOf(await newRequest(1));
    const answersFor = async (id: number) => {
      const path = taskPath(id, 1);
      const signed = signWorkerRequest(key, { method: "GET", url: server.url, path });
      const mac = signed.headers.authorization as string;
      return [
        await unsigned(await fetch(`${server.url}${path}`)),
        await unsigned(
          await fetch(`${server.url}${path}`, { headers: { authorization: "Bearer x" } }),
        ),
        await unsigned(
          await fetch(`${server.url}${path}`, {
            headers: { authorization: `${mac.slice(0, -2)}${mac.endsWith("AA") ? "BB" : "AA"}` },
          }),
        ),
        await workerFetch(server.url, other, path),
        await workerFetch(server.url, key, path, {
          headers: { authorization: mac.replace("Sheepdog ", "Sheepdog  ") },
        }),
      ];
    };
    const known = await answersFor(request.id);
    const unknown = await answersFor(request.id + 1000);
    expect(known.map(comparable)).toEqual(unknown.map(comparable));
    for (const answer of known) {
      expect(await expectError(answer, 401)).toBe(
        "This needs a valid Sheepdog authorization for its request.",
      );
      expect(answer.headers.get("www-authenticate")).toBe("Sheepdog");
      expect(answer.headers.get(PROOF_HEADER)).toBeNull();
    }
    expect(errors).toEqual([]);
  });

  it("proves every answer to a signed request, errors included, and a proof fits only its request", async () => {
    const request = await newRequest(2);
    const key = keyOf(request);
    const answers = [
      await getTask(request.id, 1, key),
      await getTask(request.id, 3, key),
      await post(request.id, 1, key, encodeReports([]), "text/plain"),
      await post(request.id, 1, key, new Uint8Array([0, 0, 0])),
      await postReports(request, 1, [{ index: 0, kind: "result", payload: pickled(1) }]),
    ];
    expect(answers.map((a) => [a.status, a.proven])).toEqual([
      [200, true],
      [404, true],
      [415, true],
      [400, true],
      [200, true],
    ]);
    // A request signed with another request's key gets nothing proven.
    const stranger = await getTask(request.id, 2, keyOf(await newRequest(1)));
    expect([stranger.status, stranger.proven, stranger.headers.get(PROOF_HEADER)]).toEqual([
      401,
      false,
      null,
    ]);
  });

  it("uses a signature once: the same request sent again is refused", async () => {
    const request = await newRequest(1);
    const path = taskPath(request.id, 1);
    const { headers } = signWorkerRequest(keyOf(request), { method: "GET", url: server.url, path });
    expect((await fetch(`${server.url}${path}`, { headers })).status).toBe(200);
    const again = await unsigned(await fetch(`${server.url}${path}`, { headers }));
    expect(await expectError(again, 401)).toContain("valid Sheepdog authorization");
    expect(again.headers.get(PROOF_HEADER)).toBeNull();
  });

  it("refuses a signature made for another port, path, method or body", async () => {
    const request = await newRequest(2);
    const key = keyOf(request);
    const path = taskPath(request.id, 1);
    const elsewhere = signWorkerRequest(key, {
      method: "GET",
      url: `http://127.0.0.1:${server.port === 1 ? 2 : server.port - 1}`,
      path,
    });
    const otherPath = signWorkerRequest(key, {
      method: "GET",
      url: server.url,
      path: taskPath(request.id, 2),
    });
    const asPost = signWorkerRequest(key, { method: "POST", url: server.url, path });
    for (const headers of [elsewhere.headers, otherPath.headers, asPost.headers]) {
      await expectError(await unsigned(await fetch(`${server.url}${path}`, { headers })), 401);
    }
    const body = encodeReports([{ index: 0, kind: "result", payload: pickled(1) }]);
    const forged = encodeReports([{ index: 0, kind: "result", payload: pickled(66) }]);
    const signed = signWorkerRequest(key, {
      method: "POST",
      url: server.url,
      path: `${path}/reports`,
      body,
    });
    const swapped = await unsigned(
      await fetch(`${server.url}${path}/reports`, {
        method: "POST",
        headers: { ...signed.headers, "content-type": REPORTS_CONTENT_TYPE },
        body: forged,
      }),
    );
    expect(await expectError(swapped, 400)).toBe(
      `The body does not match its ${BODY_HASH_HEADER} header.`,
    );
    const noHash = await unsigned(
      await fetch(`${server.url}${path}/reports`, {
        method: "POST",
        headers: {
          authorization: signed.headers.authorization as string,
          "content-type": REPORTS_CONTENT_TYPE,
        },
        body,
      }),
    );
    await expectError(noHash, 401);
    expect(await store.counts(request.id)).toEqual({ tasks: 2, results: 0, errors: 0 });
  });

  it("accepts a route it was told of (a relay's host and port) until told to stop", async () => {
    const request = await newRequest(1);
    const key = keyOf(request);
    const path = taskPath(request.id, 1);
    const throughRelay = async (): Promise<number> => {
      const { headers } = signWorkerRequest(key, {
        method: "GET",
        url: "http://Head.Example:40123",
        path,
      });
      return new Promise<number>((resolve, reject) => {
        const sent = httpRequest(
          {
            host: "127.0.0.1",
            port: server.port,
            path,
            headers: { ...headers, host: "head.example:40123" },
          },
          (answer) => {
            answer.resume();
            answer.on("end", () => resolve(answer.statusCode ?? 0));
          },
        );
        sent.on("error", reject);
        sent.end();
      });
    };
    expect(await throughRelay()).toBe(401);
    expect(server.routeRequests("head.example:40123")).toBe(0);
    const stop = server.acceptRoute("head.example:40123");
    expect(server.routeRequests("head.example:40123")).toBe(0);
    expect(await throughRelay()).toBe(200);
    expect(server.routeRequests("Head.Example:40123")).toBe(1);
    stop();
    expect(await throughRelay()).toBe(401);
    expect(server.routeRequests("head.example:40123")).toBe(0);
    expect(() => server.acceptRoute("head.example")).toThrow(/host and port/);
  });

  it("answers a right signature at a time out of its window with a proven 401 and its clock", async () => {
    const request = await newRequest(1);
    const key = keyOf(request);
    const path = taskPath(request.id, 1);
    for (const time of [Date.now() - 5 * 60_000, Date.now() + 60_000, Date.now() - 30_000]) {
      // The last is within 60 s, but before this server started.
      await server.close();
      server = await startServer({ store, port: 0, host: "127.0.0.1" });
      const answer = await workerFetch(server.url, key, path, { time });
      expect(answer.proven).toBe(true);
      const message = await expectError(answer, 401);
      expect(message).toMatch(/^The request's time is -?\d+ s off the server's clock/);
      const { serverTime } = answer.json() as { serverTime: number };
      expect(Math.abs(serverTime - Date.now())).toBeLessThan(5_000);
      expect((await workerFetch(server.url, key, path, { time: serverTime })).status).toBe(200);
    }
  });

  it("never lets one request's key read or write another request's tasks", async () => {
    const mine = await newRequest(2);
    const theirs = await newRequest(2);
    await expectError(await getTask(theirs.id, 1, keyOf(mine)), 401);
    const response = await post(
      theirs.id,
      1,
      keyOf(mine),
      encodeReports([{ index: 0, kind: "result", payload: pickled(1) }]),
    );
    await expectError(response, 401);
    expect(await store.counts(theirs.id)).toEqual({ tasks: 2, results: 0, errors: 0 });
    expect(events).toEqual([]);
  });

  it("answers an unauthenticated post at once, without reading its body, and closes", async () => {
    const request = await newRequest(1);
    for (const id of [request.id, request.id + 1000]) {
      const head =
        `POST ${taskPath(id, 1)}/reports HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n` +
        `Content-Type: ${REPORTS_CONTENT_TYPE}\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`;
      // Only the headers and 10 bytes of 64 MiB are sent; the answer comes all the same.
      const reply = await rawExchange(head, "x".repeat(10));
      expect(reply).toMatch(/^HTTP\/1\.1 401 /);
      expect(reply.toLowerCase()).toContain("connection: close");
    }
  });

  it("refuses a worker of wire protocol 1 with 410", async () => {
    const request = await newRequest(1);
    const gone = await unsigned(
      await fetch(`${server.url}/v1/requests/${request.id}/tasks/1`, {
        headers: { authorization: `Bearer ${request.token}` },
      }),
    );
    expect(await expectError(gone, 410)).toBe(
      "This server speaks wire protocol 2, and this worker an older one. Run the map again with this version of Sheepdog.",
    );
    const posted = await unsigned(
      await fetch(`${server.url}/v1/requests/${request.id}/tasks/1/reports`, {
        method: "POST",
        body: "x",
      }),
    );
    await expectError(posted, 410);
  });
});

describe("bad input", () => {
  it("answers bad ids 400 and unknown requests or tasks 404", async () => {
    const request = await newRequest(2);
    const cases: [string | number, string | number][] = [
      ["abc", 1],
      ["0", 1],
      ["-1", 1],
      ["1.5", 1],
      ["01", 1],
      ["9999999999999999", 1],
      ["1e3", 1],
      [request.id, "0"],
      [request.id, "xyz"],
    ];
    for (const [id, task] of cases) {
      const message = await expectError(await getTask(id, task, keyOf(request)), 400);
      expect(message).not.toMatch(/abc|xyz|1e3/);
    }
    // An unknown request is answered as any request the worker is not authenticated for.
    await expectError(await getTask(999, 1, keyOf(request)), 401);
    await expectError(await getTask(request.id, 3, keyOf(request)), 404);
    await expectError(await post(999, 1, keyOf(request), encodeReports([])), 401);
  });

  it("answers unknown paths and methods without echoing them", async () => {
    const marker = "zz-echo-marker";
    let response = await unsigned(await fetch(`${server.url}/${marker}/<script>`));
    expect(await expectError(response, 404)).not.toContain(marker);
    response = await unsigned(await fetch(`${server.url}/v2/requests/1/tasks/1/${marker}`));
    expect(await expectError(response, 404)).not.toContain(marker);
    response = await unsigned(
      await fetch(`${server.url}/v2/requests/1/tasks/1`, { method: "DELETE" }),
    );
    await expectError(response, 405);
    expect(response.headers.get("allow")).toBe("GET");
    response = await unsigned(await fetch(`${server.url}/v2/requests/1/tasks/1/reports`));
    await expectError(response, 405);
    response = await unsigned(await fetch(`${server.url}/health`, { method: "POST", body: "x" }));
    await expectError(response, 405);
    expect(response.headers.get("allow")).toBe("GET, HEAD");
    response = await unsigned(await fetch(`${server.url}/%ZZ${marker}`));
    expect(await expectError(response, 400)).not.toContain(marker);
  });

  it("refuses a wrong content type with 415", async () => {
    const request = await newRequest(1);
    const body = encodeReports([{ index: 0, kind: "result", payload: pickled(1) }]);
    for (const type of ["application/json", "text/plain", "", TASK_CONTENT_TYPE]) {
      await expectError(await post(request.id, 1, keyOf(request), body, type), 415);
    }
    const ok = await post(request.id, 1, keyOf(request), body, `${REPORTS_CONTENT_TYPE}; v=1`);
    expect(ok.status).toBe(200);
    const gzipped = await workerFetch(
      server.url,
      keyOf(request),
      `${taskPath(request.id, 1)}/reports`,
      {
        body,
        headers: { "content-type": REPORTS_CONTENT_TYPE, "content-encoding": "gzip" },
      },
    );
    await expectError(gzipped, 415);
  });

  it("refuses malformed report posts with 400 and stores none of them", async () => {
    const request = await newRequest(4, 2);
    const good = { index: 2, kind: "result" as const, payload: pickled(1) };
    const header = (reports: unknown) => text(JSON.stringify({ version: 2, reports }));
    const bodies = [
      new Uint8Array([0, 0, 0]),
      new Uint8Array([0, 0, 0, 9, 1]),
      encodeFrames([text("{")]),
      encodeFrames([text("[]")]),
      encodeFrames([header([{ index: 2, kind: "result" }])]),
      encodeFrames([header([{ index: 2, kind: "result" }]), pickled(1), pickled(2)]),
      // Out of this task's range (task 2 covers 2 and 3), or out of the request.
      encodeReports([good, { index: 1, kind: "result", payload: pickled(1) }]),
      encodeReports([good, { index: 4, kind: "result", payload: pickled(1) }]),
      encodeReports([good, { index: 3, kind: "error", payload: new Uint8Array([0xff, 0xc0]) }]),
      encodeReports([good, { index: 3, kind: "result", payload: text("not a pickle") }]),
      encodeReports([good, { index: 3, kind: "result", payload: new Uint8Array([0x80, 4]) }]),
      encodeReports([good, { index: 3, kind: "result", payload: new Uint8Array([]) }]),
      encodeReports([good, { index: 3, kind: "result", payload: new Uint8Array([0x80, 1, 0x2e]) }]),
      encodeReports([good, good]),
      new Uint8Array(0),
    ];
    for (const body of bodies) {
      const message = await expectError(await post(request.id, 2, keyOf(request), body), 400);
      expect(message).not.toMatch(/at .*\.(ts|js):\d+/);
      expect(message).not.toMatch(/^\[sheepdog\]/);
    }
    const truncated = await post(request.id, 2, keyOf(request), new Uint8Array([0, 0, 0]));
    expect(await expectError(truncated, 400)).toBe(
      "The frame body ends inside a section length. Send whole frames.",
    );
    expect(await store.counts(request.id)).toEqual({ tasks: 4, results: 0, errors: 0 });
    expect(events).toEqual([]);
    expect(errors).toEqual([]);
  });

  it("stores a result checkResult finds unusable as an error for that task alone", async () => {
    await server.close();
    server = await startServer({
      store,
      port: 0,
      checkResult: (payload) => (payload[3] === 13 ? "13 is unlucky" : undefined),
      onReport: (event) => events.push(event),
    });
    const request = await newRequest(3, 3);
    const reply = await postReports(request, 1, [
      { index: 0, kind: "result", payload: pickled(12) },
      { index: 1, kind: "result", payload: pickled(13) },
      { index: 2, kind: "result", payload: pickled(14) },
    ]);
    expect(reply.status).toBe(200);
    expect(reply.json()).toEqual({ stored: 3, duplicates: 0 });
    expect(await store.counts(request.id)).toEqual({ tasks: 3, results: 2, errors: 1 });
    expect((await store.getErrors(request.id)).map(({ index, error }) => [index, error])).toEqual([
      [1, "13 is unlucky"],
    ]);
    expect(events.map(({ index, kind }) => [index, kind])).toEqual([
      [0, "result"],
      [1, "error"],
      [2, "result"],
    ]);
  });

  it("waits for a checkResult that answers later, serving other requests meanwhile", async () => {
    await server.close();
    let checking: () => void = () => {};
    const reached = new Promise<void>((resolve) => {
      checking = resolve;
    });
    let answer: (reason: string | undefined) => void = () => {};
    const later = new Promise<string | undefined>((resolve) => {
      answer = resolve;
    });
    server = await startServer({
      store,
      port: 0,
      checkResult: (payload) => {
        if (payload[3] !== 13) return payload[3] === 14 ? Promise.resolve(undefined) : undefined;
        checking();
        return later;
      },
      onReport: (event) => events.push(event),
      onError: (error) => errors.push(error),
    });
    const request = await newRequest(4, 2);
    const held = postReports(request, 1, [
      { index: 0, kind: "result", payload: pickled(13) },
      { index: 1, kind: "result", payload: pickled(14) },
    ]);
    await reached;
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    const other = await postReports(request, 2, [
      { index: 2, kind: "result", payload: pickled(12) },
      { index: 3, kind: "result", payload: pickled(14) },
    ]);
    expect(other.json()).toEqual({ stored: 2, duplicates: 0 });
    expect(await store.counts(request.id)).toEqual({ tasks: 4, results: 2, errors: 0 });

    answer("13 is unlucky, said later");
    const reply = await held;
    expect(reply.status).toBe(200);
    expect(reply.json()).toEqual({ stored: 2, duplicates: 0 });
    expect(await store.counts(request.id)).toEqual({ tasks: 4, results: 3, errors: 1 });
    expect((await store.getErrors(request.id)).map(({ index, error }) => [index, error])).toEqual([
      [0, "13 is unlucky, said later"],
    ]);
    expect(events.map(({ index, kind }) => [index, kind])).toEqual([
      [2, "result"],
      [3, "result"],
      [0, "error"],
      [1, "result"],
    ]);
    expect(errors).toEqual([]);
  });

  it("answers 500 and stores nothing of a post whose check rejects or throws", async () => {
    await server.close();
    const failure = new Error("the checker went away");
    server = await startServer({
      store,
      port: 0,
      checkResult: (payload) => {
        if (payload[3] === 13) return Promise.reject(failure);
        if (payload[3] === 15) throw failure;
        return Promise.resolve(undefined);
      },
      onError: (error) => errors.push(error),
    });
    const request = await newRequest(4, 2);
    for (const [task, bad] of [
      [1, 13],
      [2, 15],
    ] as const) {
      const first = 2 * (task - 1);
      const reply = await postReports(request, task, [
        { index: first, kind: "result", payload: pickled(12) },
        { index: first + 1, kind: "result", payload: pickled(bad) },
      ]);
      expect(await expectError(reply, 500)).toBe("Internal server error.");
    }
    expect(errors).toEqual([failure, failure]);
    expect(await store.counts(request.id)).toEqual({ tasks: 4, results: 0, errors: 0 });
  });
});

describe("retry tasks (request meta retryTasks)", () => {
  it("serves tasks past the chunks with the listed indices, and checks reports against them", async () => {
    const request = await newRequest(7, 3);
    // Three chunked tasks (0-2, 3-5, 6); the retry tasks are read when first asked for.
    expect((await getTask(request.id, 4, keyOf(request))).status).toBe(404);
    await store.updateMeta(request.id, { retryTasks: [[1, 2, 4], [6]] });
    const response = await getTask(request.id, 4, keyOf(request));
    expect(response.status).toBe(200);
    const task = decodeTaskFrames(response.body);
    expect(task.header).toEqual({
      version: WIRE_VERSION,
      request: request.id,
      task: 4,
      first: 1,
      count: 3,
      indices: [1, 2, 4],
    });
    expect(task.args).toEqual([pickled(1), pickled(2), pickled(4)]);
    expect((await getTask(request.id, 6, keyOf(request))).status).toBe(404);
    await expectError(
      await postReports(request, 4, [{ index: 3, kind: "result", payload: pickled(9) }]),
      400,
    );
    const ok = await postReports(request, 4, [
      { index: 4, kind: "result", payload: pickled(16) },
      { index: 1, kind: "result", payload: pickled(1) },
    ]);
    expect(ok.json()).toEqual({ stored: 2, duplicates: 0 });
    const last = await postReports(request, 5, [{ index: 6, kind: "error", payload: text("x") }]);
    expect(last.status).toBe(200);
    expect(await store.counts(request.id)).toEqual({ tasks: 7, results: 2, errors: 1 });
    // A chunked task's header carries no indices.
    const chunk = await getTask(request.id, 2, keyOf(request));
    const chunkTask = decodeTaskFrames(chunk.body);
    expect(chunkTask.header.indices).toBeUndefined();
  });

  it("reads a long retry task's runs 4,096 arguments at a time, in the listed order", async () => {
    const request = await store.createRequest({
      func,
      ns,
      args: Array.from({ length: 7000 }, (_, i) => wide(i)),
      meta: { chunkSize: 7000 },
    });
    const indices = [...Array.from({ length: 5000 }, (_, i) => i + 1), 6000, 6002];
    await store.updateMeta(request.id, { retryTasks: [indices] });
    const response = await getTask(request.id, 2, keyOf(request));
    const task = decodeTaskFrames(response.body);
    expect(task.header).toMatchObject({ first: 1, count: indices.length, indices });
    expect(task.args).toEqual(indices.map(wide));
    // The run 1-5000 in two reads (4,096 and 904), then 6000 and 6002 alone.
    expect(calls.getArgs).toBe(4);
  });

  it("ignores a retryTasks meta of the wrong shape", async () => {
    const request = await newRequest(3);
    for (const retryTasks of [[[2, 1]], [[]], [[3]], [[0.5]], "x", [[0], 1]]) {
      await store.updateMeta(request.id, { retryTasks });
      expect((await getTask(request.id, 4, keyOf(request))).status).toBe(404);
    }
  });
});

describe("facts and logs of reports", () => {
  const facts = {
    startedAt: 1_700_000_000_000.5,
    endedAt: 1_700_000_000_750,
    host: "node-1",
    peakMemoryBytes: 52_428_800,
    attempt: 1,
  };
  const factsOf = (id: number) => {
    const { getTaskFacts } = store;
    if (!getTaskFacts) throw new Error("the test store reads facts");
    return getTaskFacts.call(store, id);
  };
  const logsOf = (id: number) => store.getLogs?.(id);

  it("stores what each report tells of its call, and nothing for one that tells nothing", async () => {
    const request = await newRequest(3, 3);
    let reply = await postReports(request, 1, [
      { index: 1, kind: "result", payload: pickled(1), ...facts, log: "printed ✓\n" },
    ]);
    expect(reply.json()).toEqual({ stored: 1, duplicates: 0 });
    reply = await postReports(request, 1, [
      { index: 0, kind: "error", payload: text("Traceback"), host: "node-2" },
      { index: 2, kind: "result", payload: pickled(2) },
      { index: 1, kind: "result", payload: pickled(9), host: "late", log: "late" },
    ]);
    expect(reply.json()).toEqual({ stored: 2, duplicates: 1 });
    expect(await factsOf(request.id)).toStrictEqual([
      { kind: "error", host: "node-2", hasLog: false },
      { kind: "result", ...facts, hasLog: true },
      { kind: "result", hasLog: false },
    ]);
    expect(await logsOf(request.id)).toEqual([{ index: 1, log: "printed ✓\n" }]);
    expect(events.map(({ index }) => index)).toEqual([1, 0, 2]);
  });

  it("keeps a log of MAX_LOG_BYTES whole, and cuts a longer one to its tail after a mark", async () => {
    const request = await newRequest(2, 2);
    const atLimit = `${"a".repeat(MAX_LOG_BYTES - 4)}end\n`;
    const over = `${"b".repeat(3 * MAX_LOG_BYTES)}the last line\n`;
    const reply = await postReports(request, 1, [
      { index: 0, kind: "result", payload: pickled(0), log: atLimit },
      { index: 1, kind: "error", payload: text("Traceback"), log: over },
    ]);
    expect(reply.json()).toEqual({ stored: 2, duplicates: 0 });
    const [whole, cut] = (await logsOf(request.id)) ?? [];
    expect(whole?.log).toBe(atLimit);
    const kept = cut?.log.slice(cut.log.indexOf("\n") + 1) ?? "";
    expect(cut?.log).toBe(logCutMark(over.length - kept.length) + kept);
    expect(text(cut?.log ?? "").byteLength).toBeLessThanOrEqual(MAX_LOG_BYTES);
    expect(kept.endsWith("bbbthe last line\n")).toBe(true);
  });

  it("refuses a post whose facts have the wrong type or are out of bounds (400), storing none", async () => {
    const request = await newRequest(2, 2);
    const good = { index: 0, kind: "result" as const, payload: pickled(0) };
    for (const bad of [{ host: "" }, { startedAt: "now" }, { peakMemoryBytes: -1 }, { log: 7 }]) {
      const body = encodeReports([good, { index: 1, kind: "result", payload: pickled(1), ...bad }]);
      const message = await expectError(await post(request.id, 1, keyOf(request), body), 400);
      expect(message).toMatch(/^A report's facts are malformed: /);
    }
    expect(await store.counts(request.id)).toEqual({ tasks: 2, results: 0, errors: 0 });
  });

  it("keeps the facts of a result checkResult finds unusable with its error", async () => {
    await server.close();
    server = await startServer({ store, port: 0, checkResult: () => "does not decode" });
    const request = await newRequest(1);
    await postReports(request, 1, [{ index: 0, kind: "result", payload: pickled(0), ...facts }]);
    expect(await factsOf(request.id)).toStrictEqual([{ kind: "error", ...facts, hasLog: false }]);
  });

  it("stores the reports, without their facts, in a store that keeps none", async () => {
    await server.close();
    ({ store, calls } = countingStore(memoryStore(), { batch: false }));
    server = await startServer({ store, port: 0 });
    const request = await newRequest(1);
    const reply = await postReports(request, 1, [
      { index: 0, kind: "result", payload: pickled(0), ...facts, log: "x" },
    ]);
    expect(reply.json()).toEqual({ stored: 1, duplicates: 0 });
    expect(calls.putResult).toBe(1);
    expect(await store.counts(request.id)).toEqual({ tasks: 1, results: 1, errors: 0 });
  });
});

describe("body size limit", () => {
  beforeEach(async () => {
    await server.close();
    server = await startServer({ store, port: 0, host: "127.0.0.1", maxBodyBytes: 64 * 1024 });
  });

  it("refuses an honest Content-Length above the limit with 413", async () => {
    const request = await newRequest(1);
    const big = encodeReports([
      { index: 0, kind: "error", payload: new Uint8Array(100 * 1024).fill(0x41) },
    ]);
    await expectError(await post(request.id, 1, keyOf(request), big), 413);
    expect(await store.counts(request.id)).toEqual({ tasks: 1, results: 0, errors: 0 });
    // The limit a worker's launch is told of.
    expect(server.maxBodyBytes).toBe(64 * 1024);
  });

  it("lets a client that sends the whole body before reading (Python's way) read its 413", async () => {
    const request = await newRequest(2);
    const path = `${taskPath(request.id, 1)}/reports`;
    const body = encodeReports([
      { index: 0, kind: "result", payload: new Uint8Array(8 * 1024 * 1024).fill(0x2e) },
    ]);
    const { headers } = signWorkerRequest(keyOf(request), {
      method: "POST",
      url: server.url,
      path,
      body,
    });
    const socket = connect(server.port, "127.0.0.1");
    let reply = "";
    let failure: Error | undefined;
    socket.setEncoding("latin1").on("data", (chunk: string) => {
      reply += chunk;
    });
    socket.on("error", (error) => {
      failure = error;
    });
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n` +
        `Authorization: ${headers.authorization}\r\n${BODY_HASH_HEADER}: ${bodyHash(body)}\r\n` +
        `Content-Type: ${REPORTS_CONTENT_TYPE}\r\nContent-Length: ${body.byteLength}\r\nConnection: close\r\n\r\n`,
    );
    socket.end(body);
    await closed;
    // Not a reset while the body was still going out: the whole refusal, after the whole body.
    expect(failure).toBeUndefined();
    expect(reply).toMatch(/^HTTP\/1\.1 413 /);
    expect(reply).toContain(
      `"The request body is larger than the server's limit of ${64 * 1024} bytes (maxBodyBytes). Send fewer reports per post."`,
    );
    expect(await store.counts(request.id)).toEqual({ tasks: 2, results: 0, errors: 0 });
    // The connection's body was thrown away: the server's other work goes on.
    const small = encodeReports([{ index: 1, kind: "result", payload: pickled(1) }]);
    expect((await post(request.id, 2, keyOf(request), small)).status).toBe(200);
  });

  it("accepts a body right at the limit", async () => {
    const request = await newRequest(1);
    const payload = new Uint8Array(64 * 1024 - 100).fill(0x41);
    const body = encodeReports([{ index: 0, kind: "error", payload }]);
    expect(body.byteLength).toBeLessThanOrEqual(64 * 1024);
    expect((await post(request.id, 1, keyOf(request), body)).status).toBe(200);
  });

  it("refuses a chunked body as it passes the limit, without reading it all", async () => {
    const request = await newRequest(1);
    const { status, sent } = await new Promise<{ status: number; sent: number }>(
      (resolve, reject) => {
        let sent = 0;
        const { headers } = signWorkerRequest(keyOf(request), {
          method: "POST",
          url: server.url,
          path: `${taskPath(request.id, 1)}/reports`,
          body: new Uint8Array(64 * 1024 * 1024).fill(0x42),
        });
        const req = httpRequest(`${taskUrl(request.id, 1)}/reports`, {
          method: "POST",
          headers: {
            ...headers,
            "content-type": REPORTS_CONTENT_TYPE,
            "transfer-encoding": "chunked",
          },
        });
        const chunk = new Uint8Array(16 * 1024).fill(0x42);
        let stop = false;
        req.on("response", (res) => {
          stop = true;
          res.resume();
          resolve({ status: res.statusCode ?? 0, sent });
          req.destroy();
        });
        req.on("error", (error) => {
          if (!stop) reject(error);
        });
        // Up to 64 MiB, one chunk at a time, stopping as soon as the answer comes.
        const pump = () => {
          while (!stop && sent < 64 * 1024 * 1024) {
            sent += chunk.byteLength;
            if (!req.write(chunk)) {
              req.once("drain", pump);
              return;
            }
          }
          if (!stop) req.end();
        };
        pump();
      },
    );
    expect(status).toBe(413);
    expect(sent).toBeLessThan(16 * 1024 * 1024);
    expect(await store.counts(request.id)).toEqual({ tasks: 1, results: 0, errors: 0 });
    // The server is still fine.
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });
});

describe("bodies in flight", () => {
  /** Starts a signed post that declares `length` bytes and sends only its headers. */
  function heldPost(request: CreatedRequest, task: number, length: number) {
    const path = `${taskPath(request.id, task)}/reports`;
    const body = new Uint8Array(length).fill(0x41);
    const { headers } = signWorkerRequest(keyOf(request), {
      method: "POST",
      url: server.url,
      path,
      body,
    });
    const socket = connect(server.port, "127.0.0.1");
    let reply = "";
    socket.setEncoding("latin1").on("data", (chunk: string) => {
      reply += chunk;
    });
    const closed = new Promise<string>((resolve) => socket.on("close", () => resolve(reply)));
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n` +
        `Authorization: ${headers.authorization}\r\n${BODY_HASH_HEADER}: ${bodyHash(body)}\r\n` +
        `Content-Type: ${REPORTS_CONTENT_TYPE}\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`,
    );
    return { socket, closed, body };
  }

  it("answers 503 to a post that would pass maxBodyBytesInFlight, and takes it once there is room", async () => {
    await server.close();
    server = await startServer({
      store,
      port: 0,
      host: "127.0.0.1",
      maxBodyBytes: 64 * 1024,
      maxBodyBytesInFlight: 128 * 1024,
    });
    const request = await newRequest(3);
    // Two posts of 60 KiB being read (their bodies held back) fill most of the 128 KiB.
    const held = [heldPost(request, 1, 60 * 1024), heldPost(request, 2, 60 * 1024)];
    await new Promise((resolve) => setTimeout(resolve, 200));
    const body = encodeReports([{ index: 2, kind: "result", payload: pickled(2) }]);
    const refused = await post(request.id, 3, keyOf(request), new Uint8Array(10 * 1024).fill(1));
    expect(refused.proven).toBe(true);
    expect(await expectError(refused, 503)).toBe(
      "The server is reading too many bodies at once. Try again shortly.",
    );
    expect(refused.headers.get("retry-after")).toBe("1");
    // Small posts still fit; once the held bodies end, a large one fits again.
    expect((await post(request.id, 3, keyOf(request), body)).status).toBe(200);
    for (const { socket, body: rest } of held) socket.end(rest);
    const answers = await Promise.all(held.map(({ closed }) => closed));
    // Their bodies were read and refused as frames, which frees the room they held.
    for (const answer of answers) expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    const again = await post(
      request.id,
      1,
      keyOf(request),
      encodeReports([{ index: 0, kind: "error", payload: new Uint8Array(60 * 1024).fill(0x41) }]),
    );
    expect(again.status).toBe(200);
  });
});

describe("slow clients", () => {
  it("answers a request that trickles in too slowly with 408 and stays up", async () => {
    await server.close();
    server = await startServer({ store, port: 0, host: "127.0.0.1", requestTimeoutMs: 500 });
    const request = await newRequest(1);
    const socket = connect(server.port, "127.0.0.1");
    let reply = "";
    socket.setEncoding("latin1").on("data", (chunk: string) => {
      reply += chunk;
    });
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    const path = `${taskPath(request.id, 1)}/reports`;
    const { headers } = signWorkerRequest(keyOf(request), {
      method: "POST",
      url: server.url,
      path,
      body: text("x".repeat(1000)),
    });
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n` +
        `Authorization: ${headers.authorization}\r\n${BODY_HASH_HEADER}: ${headers[BODY_HASH_HEADER]}\r\n` +
        `Content-Type: ${REPORTS_CONTENT_TYPE}\r\nContent-Length: 1000\r\n\r\n`,
    );
    const trickle = setInterval(() => socket.write("x"), 100);
    await closed;
    clearInterval(trickle);
    expect(reply).toMatch(/^HTTP\/1\.1 408 /);
    expect(await store.counts(request.id)).toEqual({ tasks: 1, results: 0, errors: 0 });
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });
});

describe("store failures and lifecycle", () => {
  it("answers 503 when the store fails, and reports the failure", async () => {
    const request = await newRequest(1);
    const failing = async () => {
      throw new SheepdogError("STORE_IO", "test", "disk full");
    };
    Object.assign(store, { putResult: failing, putReports: failing });
    const response = await postReports(request, 1, [
      { index: 0, kind: "result", payload: pickled(1) },
    ]);
    const message = await expectError(response, 503);
    expect(message).not.toContain("disk full");
    expect(response.headers.get("retry-after")).toBe("1");
    expect(errors).toHaveLength(1);
  });

  it("refuses a port taken by another program with SERVER_FAILED", async () => {
    const blocker = createNetServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const error = await startServer({ store, port, host: "127.0.0.1" }).catch((e) => e);
      expect(SheepdogError.isInstance(error)).toBe(true);
      expect(error.code).toBe("SERVER_FAILED");
      expect(error.message).toBe(
        `[sheepdog] [server] Port ${port} on 127.0.0.1 is in use by another program. Choose another port, leave the port unset to pick a free one, or stop the program using it.`,
      );
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it("rejects bad options with CONFIG_INVALID", async () => {
    for (const options of [
      { port: -1 },
      { port: 70000 },
      { port: 1.5 },
      { maxBodyBytes: 10 },
      { requestTimeoutMs: 5 },
      { maxBodyBytes: 4096, maxBodyBytesInFlight: 4095 },
      { maxBodyBytesInFlight: 1.5 },
    ]) {
      const error = await startServer({ store, ...options }).catch((e) => e);
      expect(error.code).toBe("CONFIG_INVALID");
    }
  });

  it("stops listening on close, and close is idempotent", async () => {
    const url = server.url;
    await server.close();
    await server.close();
    await expect(fetch(`${url}/health`)).rejects.toThrow();
  });

  it("supports await using and onReport unsubscribe", async () => {
    const request = await newRequest(2);
    let port = 0;
    {
      await using local = await startServer({ store, port: 0 });
      port = local.port;
      const seen: number[] = [];
      const off = local.onReport((e) => seen.push(e.index));
      await workerFetch(local.url, keyOf(request), `${taskPath(request.id, 1)}/reports`, {
        headers: { "content-type": REPORTS_CONTENT_TYPE },
        body: encodeReports([{ index: 0, kind: "result", payload: pickled(0) }]),
      });
      off();
      await workerFetch(local.url, keyOf(request), `${taskPath(request.id, 2)}/reports`, {
        headers: { "content-type": REPORTS_CONTENT_TYPE },
        body: encodeReports([{ index: 1, kind: "result", payload: pickled(1) }]),
      });
      expect(seen).toEqual([0]);
    }
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
  });
});
