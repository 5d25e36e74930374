import { mkdtempSync, rmSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CreatedRequest, MacKey, Store } from "@sheepdog/contracts";
import {
  BODY_HASH_HEADER,
  encodeFrames,
  encodeReports,
  REPORTS_CONTENT_TYPE,
  signWorkerRequest,
} from "@sheepdog/contracts";
import { sqliteStore } from "@sheepdog/store-sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyOf } from "./__fixtures__/worker-client.js";
import type { SheepdogServer } from "./server.js";
import { startServer } from "./server.js";

/**
 * At least 10,000 malformed or hostile requests against a real server on a real SQLite store,
 * over loopback: each is answered 4xx, the server stays up, and the store is unchanged.
 * Seeded, so a failure names the case that can be run again.
 */

const SEED = 0x5eed_d09;
const CASES = 10_400;
const MAX_BODY = 64 * 1024;
/** A string no answer may echo: it is in every hostile path, header and body. */
const MARKER = "zq7FUZZMARKERq7z";

/** mulberry32: a small seeded PRNG. */
function prng(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));
  return { next, int, pick, bytes };
}

type Random = ReturnType<typeof prng>;

/**
 * How a case is signed when it is sent (wire protocol v2: a signature is good once, and for a
 * minute): with `key`, for the case's method, path and body unless another is given, then
 * its Authorization header passed through `mangle`.
 */
interface Signing {
  key: MacKey;
  method?: string;
  path?: string;
  url?: string;
  body?: Uint8Array;
  time?: number;
  mangle?: (authorization: string) => string;
}

/** One fuzz case: an HTTP request the client library can send. */
interface Case {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Uint8Array;
  sign?: Signing;
}

const text = (value: string) => new TextEncoder().encode(value);
/** A protocol 4 pickle of the small int `n`. */
const pickled = (n: number) => new Uint8Array([0x80, 4, 0x4b, n, 0x2e]);
const func = text(JSON.stringify({ name: "f", source: "def f(x):\n    return x\n" }));

describeFuzz();

function describeFuzz() {
  describe("fuzzing the server with malformed and hostile requests", () => {
    let dir: string;
    let store: Store;
    let server: SheepdogServer;
    let a: CreatedRequest;
    let b: CreatedRequest;
    const failures: unknown[] = [];

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), "sheepdog-fuzz-"));
      store = sqliteStore({ dbfile: join(dir, "fuzz.sqlite") });
      // Request a: 6 arguments in 3 tasks of 2, two of them reported; b: 3 tasks of 1.
      a = await store.createRequest({
        func,
        ns: new Uint8Array(),
        args: [0, 1, 2, 3, 4, 5].map(pickled),
        meta: { chunkSize: 2 },
      });
      b = await store.createRequest({ func, ns: new Uint8Array(), args: [0, 1, 2].map(pickled) });
      await store.putResult(a.id, 0, pickled(100));
      await store.putError(a.id, 3, "Traceback: before the fuzz");
      server = await startServer({
        store,
        port: 0,
        host: "127.0.0.1",
        maxBodyBytes: MAX_BODY,
        requestTimeoutMs: 1000,
        onError: (error) => failures.push(error),
      });
    });

    afterAll(async () => {
      await server.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });

    /** Everything the store says about both requests. */
    async function snapshot() {
      const out: unknown[] = [];
      for (const id of [a.id, b.id]) {
        out.push(await store.counts(id), await store.getResults(id), await store.getErrors(id));
      }
      out.push(
        (await store.listRequests()).map(({ id, tasks, results, errors }) => ({
          id,
          tasks,
          results,
          errors,
        })),
      );
      return out;
    }

    function generate(random: Random): Case {
      const goodPath = (r: CreatedRequest, task: number) => `/v2/requests/${r.id}/tasks/${task}`;
      const reportHeaders = { "content-type": REPORTS_CONTENT_TYPE };
      const keyA = keyOf(a);
      const junk = () =>
        Array.from({ length: 1 + random.int(24) }, () =>
          random.pick([..."abcXYZ019-_.~%/?#&=;:@!$'()*+,", "%00", "%2e%2e", "..", "\u00e9"]),
        ).join("");
      switch (random.int(12)) {
        case 0: {
          // Paths that are not routes: junk, traversal, near misses, long ones.
          const path = random.pick([
            `/${MARKER}/${junk()}`,
            `/v2/requests/${a.id}/tasks/1/${MARKER}`,
            // Traversal that lands on the other request's task: a's key does not open it.
            `/v2/requests/${a.id}/tasks/../../${b.id}/tasks/1?${MARKER}`,
            `/v2/requests/${a.id}/%2e%2e/%2e%2e/${b.id}/tasks/1`,
            `/v3/requests/${a.id}/tasks/1`,
            `/v1/requests/${a.id}/tasks/1`,
            `/v2/requests/${a.id}/task/1`,
            `/v2/requests/${a.id}/tasks/1/reports/${junk()}`,
            `/health/${MARKER}`,
            `/${"a".repeat(1000 + random.int(6000))}${MARKER}`,
            `/v2/requests/${encodeURIComponent(junk())}${MARKER}/tasks/1`,
          ]);
          return {
            kind: "path",
            method: random.pick(["GET", "POST"]),
            path,
            headers: {},
            sign: { key: keyA },
          };
        }
        case 1: {
          // Methods the routes do not take (with a token, so only the method is wrong).
          const method = random.pick(["PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "MKCOL"]);
          const path = random.pick([goodPath(a, 1), `${goodPath(a, 1)}/reports`, "/health"]);
          return {
            kind: "method",
            method,
            path,
            headers: {},
            body: text(MARKER),
            sign: { key: keyA },
          };
        }
        case 2: {
          // Signatures: none, old bearer tokens, junk, the other request's key, a changed MAC,
          // signed for another path, method, port, body or time.
          const post = random.int(2) === 0;
          const task = 1 + random.int(3);
          const path = post ? `${goodPath(a, task)}/reports` : goodPath(a, task);
          const flip = (auth: string) => `${auth.slice(0, -1)}${auth.endsWith("A") ? "B" : "A"}`;
          const variants: (Signing | Record<string, string>)[] = [
            {},
            { authorization: `Bearer ${a.token}` },
            { authorization: `Sheepdog ${MARKER}` },
            { authorization: `Sheepdog ${"A".repeat(22)}.1.${"A".repeat(43)}` },
            { key: keyOf(b) },
            { key: keyA, mangle: flip },
            { key: keyA, mangle: (auth: string) => `${auth} ${MARKER}` },
            { key: keyA, path: goodPath(a, (task % 3) + 1) },
            { key: keyA, method: post ? "GET" : "POST" },
            { key: keyA, url: `http://127.0.0.1:${server.port + 1}` },
            { key: keyA, body: text(MARKER) },
            { key: keyA, time: Date.now() - 10 * 60_000 },
          ];
          const variant = random.pick(variants);
          const signing = "key" in variant ? (variant as Signing) : undefined;
          const headers = signing ? {} : (variant as Record<string, string>);
          return {
            kind: "token",
            method: post ? "POST" : "GET",
            path,
            headers: post ? { ...headers, "content-type": REPORTS_CONTENT_TYPE } : headers,
            ...(post && {
              body: encodeReports([{ index: 1, kind: "result", payload: pickled(66) }]),
            }),
            ...(signing && { sign: signing }),
          };
        }
        case 3: {
          // Request ids: zero, negative, huge, non-numeric, unknown.
          const id = random.pick([
            "0",
            "-1",
            "01",
            "1e3",
            "99999999999999999999",
            "9007199254740993",
            String(b.id + 1000 + random.int(1000)),
            MARKER,
            "%31",
            "1.0",
            " 1",
          ]);
          return {
            kind: "request-id",
            method: "GET",
            path: `/v2/requests/${encodeURIComponent(id)}/tasks/1`,
            headers: {},
            sign: { key: keyA },
          };
        }
        case 4: {
          // Task numbers: zero, negative, past the end, huge, non-numeric.
          const task = random.pick(["0", "-2", "4", "5", "4000000000", "1e1", "x", MARKER, "1.5"]);
          const post = random.int(2) === 0;
          return {
            kind: "task",
            method: post ? "POST" : "GET",
            path: `/v2/requests/${a.id}/tasks/${encodeURIComponent(task)}${post ? "/reports" : ""}`,
            headers: post ? reportHeaders : {},
            sign: { key: keyA },
            ...(post && {
              body: encodeReports([{ index: 0, kind: "result", payload: pickled(7) }]),
            }),
          };
        }
        case 5:
        case 6: {
          // Report posts with the right token and type, but a body that is wrong.
          const body = badReportBody(random);
          return {
            kind: "report-body",
            method: "POST",
            path: `${goodPath(a, 2)}/reports`,
            headers: reportHeaders,
            body,
            sign: { key: keyA },
          };
        }
        case 7: {
          // Truncated or garbled pickles in otherwise valid posts (task 3 covers 4 and 5).
          const payload = badPickle(random);
          return {
            kind: "pickle",
            method: "POST",
            path: `${goodPath(a, 3)}/reports`,
            headers: reportHeaders,
            body: encodeReports([{ index: 4 + random.int(2), kind: "result", payload }]),
            sign: { key: keyA },
          };
        }
        case 8: {
          // Bodies over the limit.
          const size = MAX_BODY + 1 + random.int(4 * MAX_BODY);
          const payload = new Uint8Array(size).fill(0x41);
          return {
            kind: "oversized",
            method: "POST",
            path: `${goodPath(a, 2)}/reports`,
            headers: reportHeaders,
            sign: { key: keyA },
            body: encodeReports([{ index: 2, kind: "error", payload }]),
          };
        }
        case 9: {
          // Wrong content types and encodings on an otherwise good post.
          const headers: Record<string, string> = {};
          const type = random.pick([
            "",
            "text/plain",
            "application/json",
            "application/octet-stream",
            "multipart/form-data; boundary=x",
            `${REPORTS_CONTENT_TYPE}x`,
            `application/vnd.sheepdog.task+frames`,
          ]);
          if (type) headers["content-type"] = type;
          if (!type || random.int(3) === 0) {
            headers["content-type"] = REPORTS_CONTENT_TYPE;
            headers["content-encoding"] = random.pick(["gzip", "deflate", "br", MARKER]);
          }
          return {
            kind: "content-type",
            method: "POST",
            path: `${goodPath(a, 2)}/reports`,
            headers,
            sign: { key: keyA },
            body: encodeReports([{ index: 2, kind: "result", payload: pickled(9) }]),
          };
        }
        case 10: {
          // One request's key against the other's tasks: never readable, never writable.
          const [owner, other] = random.int(2) === 0 ? [a, b] : [b, a];
          const post = random.int(2) === 0;
          return {
            kind: "cross-token",
            method: post ? "POST" : "GET",
            path: post ? `${goodPath(owner, 1)}/reports` : goodPath(owner, 1),
            headers: post ? reportHeaders : {},
            sign: { key: keyOf(other) },
            ...(post && {
              body: encodeReports([{ index: 0, kind: "result", payload: pickled(13) }]),
            }),
          };
        }
        default: {
          // Empty bodies, and bodies on a report post that are not frames at all.
          const body = random.pick([
            new Uint8Array(),
            text(MARKER),
            random.bytes(1 + random.int(64)),
            text(JSON.stringify({ version: 2, reports: [{ index: 2, kind: "result" }] })),
          ]);
          return {
            kind: "empty-or-junk",
            method: "POST",
            path: `${goodPath(a, 2)}/reports`,
            headers: reportHeaders,
            body,
            sign: { key: keyA },
          };
        }
      }
    }

    /** A report post body that is malformed in one of many ways, for task 2 (indices 2, 3). */
    function badReportBody(random: Random): Uint8Array {
      const good = encodeReports([{ index: 2, kind: "result", payload: pickled(1) }]);
      const header = (value: unknown) => text(JSON.stringify(value));
      switch (random.int(12)) {
        case 0:
          // Truncated inside a length or a section.
          return good.subarray(0, 1 + random.int(good.byteLength - 2));
        case 1:
          // Trailing bytes: a section length that runs past the end.
          return Uint8Array.from([...good, 0, 0, 0, 9, 1]);
        case 2:
          return encodeFrames([text(`{${MARKER}`), pickled(1)]);
        case 3:
          return encodeFrames([Uint8Array.from([0xff, 0xfe, 0x7b]), pickled(1)]);
        case 4:
          return encodeFrames([
            header({ version: 1, reports: [{ index: 2, kind: "result" }] }),
            pickled(1),
          ]);
        case 5:
          // An index outside the task (task 2 covers 2 and 3), or not an index at all.
          return encodeFrames([
            header({
              version: 2,
              reports: [
                { index: random.pick([0, 1, 4, 5, 6, -1, 2.5, "2", 1e300, null]), kind: "result" },
              ],
            }),
            pickled(1),
          ]);
        case 6:
          return encodeFrames([
            header({
              version: 2,
              reports: [{ index: 2, kind: random.pick(["ok", "", MARKER, 1]) }],
            }),
            pickled(1),
          ]);
        case 7:
          // Two reports for the same index in one post.
          return encodeReports([
            { index: 3, kind: "result", payload: pickled(1) },
            { index: 3, kind: "error", payload: text("x") },
          ]);
        case 8:
          // More or fewer payloads than the header lists.
          return encodeFrames([
            header({
              version: 2,
              reports: [
                { index: 2, kind: "result" },
                { index: 3, kind: "result" },
              ],
            }),
            pickled(1),
          ]);
        case 9:
          // An error that is not UTF-8.
          return encodeReports([
            { index: 2, kind: "error", payload: Uint8Array.from([0x66, 0xc3, 0x28, 0xff]) },
          ]);
        case 10:
          // A header of columns with one column wrong.
          return encodeFrames([
            header({
              version: 2,
              columns: random.pick<unknown>([
                { index: [random.pick([0, 1, 4, -1, 2.5, "2", null])], kind: "result" },
                { index: [2], kind: random.pick(["ok", null, [], ["result", "result"]]) },
                { index: [2, 3], kind: "result" },
                { index: [2], kind: "result", startedAt: random.pick([[1, 2], -1, "x", null]) },
                { index: [2], kind: "result", log: "the same for every report" },
                { index: 2, kind: "result" },
                { kind: "result" },
                null,
                [],
              ]),
            }),
            pickled(1),
          ]);
        default:
          return encodeFrames([header({ version: 2, reports: random.pick([null, {}, "x", 3]) })]);
      }
    }

    /** A result payload that fails the pickle framing check (it can never be stored). */
    function badPickle(random: Random): Uint8Array {
      const full = Uint8Array.from([
        0x80,
        4,
        0x95,
        9,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0x8c,
        5,
        ...text("hello"),
        0x94,
        0x2e,
      ]);
      let payload: Uint8Array;
      switch (random.int(5)) {
        case 0:
          payload = full.subarray(0, random.int(full.byteLength));
          break;
        case 1:
          payload = Uint8Array.from([0x80, random.pick([0, 1, 6, 255]), 0x4b, 1, 0x2e]);
          break;
        case 2:
          payload = Uint8Array.from([random.pick([0x28, 0x4b, 0x00, 0x7f]), 4, 0x4b, 1, 0x2e]);
          break;
        case 3:
          payload = random.bytes(random.int(200));
          break;
        default:
          payload = Uint8Array.from([...full.subarray(0, -1), ...random.bytes(1 + random.int(50))]);
      }
      // Whatever was cut or drawn, make sure it does not end like a pickle.
      if (payload.byteLength >= 1 && payload[payload.byteLength - 1] === 0x2e) {
        payload = payload.subarray(0, -1);
      }
      return payload;
    }

    /** The headers of a case's signature, made now (a signature is good for a minute, once). */
    function signature(c: Case): Record<string, string> {
      if (c.sign === undefined) return {};
      const body = c.sign.body ?? c.body;
      const { headers } = signWorkerRequest(c.sign.key, {
        method: c.sign.method ?? c.method,
        url: c.sign.url ?? server.url,
        path: c.sign.path ?? c.path,
        ...(body !== undefined && { body }),
        ...(c.sign.time !== undefined && { time: c.sign.time }),
      });
      const authorization = headers.authorization as string;
      headers.authorization = c.sign.mangle ? c.sign.mangle(authorization) : authorization;
      return headers;
    }

    function send(agent: Agent, c: Case): Promise<{ status: number; body: string }> {
      return new Promise((resolve, reject) => {
        const req = httpRequest(
          {
            host: "127.0.0.1",
            port: server.port,
            method: c.method,
            path: c.path,
            agent,
            headers: {
              ...c.headers,
              ...signature(c),
              ...(c.body && { "content-length": String(c.body.byteLength) }),
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (chunk: Buffer) => chunks.push(chunk));
            res.on("end", () =>
              resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
            );
            res.on("error", reject);
          },
        );
        req.on("error", (error: NodeJS.ErrnoException) => {
          // The server may answer 413 and close before the whole body was written.
          if (error.code === "EPIPE" || error.code === "ECONNRESET")
            resolve({ status: -1, body: "" });
          else reject(error);
        });
        req.end(c.body);
      });
    }

    /** Raw HTTP that no client library would send: each must get a 4xx or a closed socket. */
    function raw(payload: string | Uint8Array, trickleMs = 0): Promise<string> {
      return new Promise((resolve, reject) => {
        const socket = connect(server.port, "127.0.0.1");
        let answer = "";
        socket.on("data", (chunk) => {
          answer += chunk.toString("latin1");
        });
        socket.on("close", () => resolve(answer));
        socket.on("error", (error: NodeJS.ErrnoException) => {
          if (error.code === "ECONNRESET" || error.code === "EPIPE") resolve(answer);
          else reject(error);
        });
        socket.setTimeout(10_000, () => socket.destroy());
        if (trickleMs === 0) {
          socket.end(payload);
          return;
        }
        // A slow trickle: one byte at a time, never finishing within the request timeout.
        const bytes = typeof payload === "string" ? Buffer.from(payload, "latin1") : payload;
        let i = 0;
        const timer = setInterval(() => {
          if (socket.destroyed || i >= bytes.byteLength) {
            clearInterval(timer);
            return;
          }
          socket.write(bytes.subarray(i, i + 1));
          i += 1;
        }, trickleMs);
        socket.on("close", () => clearInterval(timer));
      });
    }

    it(`answers ${CASES} malformed or hostile requests with 4xx and stays up, its store unchanged`, async () => {
      const before = await snapshot();
      const random = prng(SEED);
      const agent = new Agent({ keepAlive: true, maxSockets: 32 });
      const byKind = new Map<string, Map<number, number>>();
      const bad: string[] = [];

      // Slow trickles run beside the rest: a post whose body never arrives in time.
      const trickles = Array.from({ length: 6 }, (_, i) => {
        const body = encodeReports([{ index: 2, kind: "result", payload: pickled(i) }]);
        const path = `/v2/requests/${a.id}/tasks/2/reports`;
        const promised = Uint8Array.from([...body, ...new Uint8Array(1000)]);
        const signed = signature({
          kind: "",
          method: "POST",
          path,
          headers: {},
          body: promised,
          sign: { key: keyOf(a) },
        });
        const head =
          `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n` +
          `Authorization: ${signed.authorization}\r\n${BODY_HASH_HEADER}: ${signed[BODY_HASH_HEADER]}\r\n` +
          `Content-Type: ${REPORTS_CONTENT_TYPE}\r\nContent-Length: ${body.byteLength + 1000}\r\n\r\n`;
        return i % 2 === 0
          ? raw(head.slice(0, 40), 150) // the headers themselves trickle
          : new Promise<string>((resolve, reject) => {
              const socket = connect(server.port, "127.0.0.1", () => {
                socket.write(head);
                socket.write(body); // then 1000 promised bytes never come
              });
              let answer = "";
              socket.on("data", (chunk) => {
                answer += chunk.toString("latin1");
              });
              socket.on("close", () => resolve(answer));
              socket.on("error", reject);
              socket.setTimeout(10_000, () => socket.destroy());
            });
      });

      let next = 0;
      const cases: Case[] = Array.from({ length: CASES }, () => generate(random));
      async function worker() {
        while (next < cases.length) {
          const c = cases[next++] as Case;
          const { status, body } = await send(agent, c);
          const counts = byKind.get(c.kind) ?? new Map<number, number>();
          byKind.set(c.kind, counts);
          counts.set(status, (counts.get(status) ?? 0) + 1);
          const echoed = body.includes(MARKER) || /at .*\.(ts|js):\d+/.test(body);
          const refused = status === -1 && c.kind === "oversized";
          if (!((status >= 400 && status < 500) || refused) || echoed) {
            if (bad.length < 10) {
              bad.push(
                `${c.kind} ${c.method} ${c.path.slice(0, 120)} -> ${status} ${body.slice(0, 200)}`,
              );
            }
          }
        }
      }
      await Promise.all(Array.from({ length: 32 }, worker));
      agent.destroy();

      // Raw requests: malformed request lines, headers, framing.
      const rawSigned = (method: string, path: string) =>
        signature({
          kind: "",
          method,
          path,
          headers: {},
          sign: { key: keyOf(a), body: new Uint8Array() },
        }).authorization;
      const rawCases = [
        `GARBAGE ${MARKER}\r\n\r\n`,
        `GET /health HTTP/9.9\r\n\r\n`,
        `GET /v2/requests/${a.id}/tasks/1\r\n\r\n`,
        `GET /v2/requests/${a.id}/tasks/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Sheepdog ${MARKER}\u0000\r\n\r\n`,
        `GET /v2/requests/${a.id}/tasks/1 HTTP/1.1\r\nHost: x\r\n${"X-Pad: ".padEnd(20_000, "p")}\r\n\r\n`,
        `GET /${MARKER} HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n`,
        `POST /v2/requests/${a.id}/tasks/2/reports HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
        `POST /v2/requests/${a.id}/tasks/2/reports HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nTransfer-Encoding: chunked\r\nAuthorization: ${rawSigned("POST", `/v2/requests/${a.id}/tasks/2/reports`)}\r\nContent-Type: ${REPORTS_CONTENT_TYPE}\r\n\r\nzz\r\n${MARKER}\r\n0\r\n\r\n`,
        `GET /v2/requests/${a.id}/tasks/1 HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nAuthorization: ${rawSigned("GET", `/v2/requests/${a.id}/tasks/1`)}\r\nContent-Length: 1, 2\r\n\r\n`,
        `GET /v2/requests/%ZZ/tasks/1 HTTP/1.1\r\nHost: x\r\n\r\n`,
        `\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u01fc\u0003\u0003${MARKER}`,
      ];
      const rawAnswers = await Promise.all(rawCases.map((payload) => raw(payload)));
      rawAnswers.forEach((answer, i) => {
        const status = /^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1];
        // Node itself answers what is not HTTP with 400 (or 431 for huge headers) and closes.
        if (!status || Number(status) < 400 || Number(status) > 499 || answer.includes(MARKER)) {
          bad.push(`raw ${i} -> ${JSON.stringify(answer.slice(0, 200))}`);
        }
      });

      const trickled = await Promise.all(trickles);
      for (const answer of trickled) {
        if (!/^HTTP\/1\.1 408 /.test(answer))
          bad.push(`trickle -> ${JSON.stringify(answer.slice(0, 200))}`);
      }

      const summary = [...byKind].map(
        ([kind, counts]) => `${kind}: ${[...counts].map(([s, n]) => `${s}x${n}`).join(" ")}`,
      );
      expect(bad, summary.join("\n")).toEqual([]);
      const total = [...byKind.values()].reduce(
        (sum, counts) => sum + [...counts.values()].reduce((s, n) => s + n, 0),
        0,
      );
      expect(total + rawCases.length + trickles.length).toBeGreaterThanOrEqual(10_000);
      // Every kind of case was drawn.
      expect(byKind.size).toBe(11);
      expect(failures).toEqual([]);

      // Still up, and nothing in the store changed.
      const health = await fetch(`${server.url}/health`);
      expect(health.status).toBe(200);
      expect(await snapshot()).toEqual(before);
      // And it still serves a well-formed request.
      const path = `/v2/requests/${b.id}/tasks/1`;
      const { headers } = signWorkerRequest(keyOf(b), { method: "GET", url: server.url, path });
      const ok = await fetch(`${server.url}${path}`, { headers });
      expect(ok.status).toBe(200);
    }, 60_000);
  });
}
