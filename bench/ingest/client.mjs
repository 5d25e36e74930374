// The load generator of the ingest benchmark: simulated workers, each doing what one Python
// worker task does (GET its task, read the frames, POST one result with the facts of its call),
// as many at once as --concurrency says, for --seconds after a warm-up. Plain HTTP/1.1 over
// node:net, written and parsed by hand, so that the generator spends as little CPU as it can
// and the server gets the rest of the machine.
//
// --connection close (default): a new TCP connection per HTTP request with "Connection:
// close", as the worker's urllib does. --connection keep-alive: one connection per simulated
// worker, reused.
//
// Prints one JSON line: round trips, seconds, round trips/s, latency p50/p99 (ms), failures.
import { connect } from "node:net";
import { parseArgs } from "node:util";
import {
  BODY_HASH_HEADER,
  bodyHash,
  hashToken,
  macKey,
  newNonce,
  workerMac,
} from "../../packages/contracts/dist/index.js";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    request: { type: "string" },
    token: { type: "string" },
    tasks: { type: "string" },
    concurrency: { type: "string", default: "32" },
    seconds: { type: "string", default: "5" },
    warmup: { type: "string", default: "1" },
    connection: { type: "string", default: "close" },
  },
});
const port = Number(values.port);
const request = Number(values.request);
const tasks = Number(values.tasks);
const concurrency = Number(values.concurrency);
const keepAlive = values.connection === "keep-alive";
const warmupMs = Number(values.warmup) * 1000;
const measureMs = Number(values.seconds) * 1000;
const host = "127.0.0.1";
const connectionHeader = keepAlive ? "keep-alive" : "close";
// Each request is signed as the Python worker signs it (wire protocol v2): a new nonce and
// time, an HMAC under the token's hash.
const key = macKey(hashToken(values.token));
const authority = `${host}:${port}`;
function authorization(method, path, hash) {
  const facts = {
    method,
    host: authority,
    path,
    nonce: newNonce(),
    time: Date.now(),
    bodyHash: hash,
  };
  return `Sheepdog ${facts.nonce}.${facts.time}.${workerMac(key, facts)}`;
}

const HEADER_END = Buffer.from("\r\n\r\n");

/** Reads one HTTP/1.1 response from `socket`; resolves { status, body }. */
function readResponse(socket) {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    let status = 0;
    let bodyStart = -1;
    let length = -1;
    let chunked = false;
    const finish = (body) => {
      cleanup();
      // Bytes beyond this response stay unread: a worker sends one request at a time.
      resolve({ status, body });
    };
    const tryParse = () => {
      if (bodyStart < 0) {
        const end = buffered.indexOf(HEADER_END);
        if (end < 0) return;
        const head = buffered.subarray(0, end).toString("latin1");
        status = Number(head.slice(9, 12));
        const declared = /\r\ncontent-length: *(\d+)/i.exec(head);
        if (declared) length = Number(declared[1]);
        chunked = /\r\ntransfer-encoding: *chunked/i.test(head);
        bodyStart = end + 4;
      }
      if (length >= 0) {
        if (buffered.length - bodyStart >= length)
          finish(buffered.subarray(bodyStart, bodyStart + length));
      } else if (chunked) {
        const parts = [];
        let at = bodyStart;
        for (;;) {
          const lineEnd = buffered.indexOf("\r\n", at);
          if (lineEnd < 0) return;
          const size = Number.parseInt(buffered.subarray(at, lineEnd).toString("latin1"), 16);
          if (buffered.length < lineEnd + 2 + size + 2) return;
          if (size === 0) {
            finish(Buffer.concat(parts));
            return;
          }
          parts.push(buffered.subarray(lineEnd + 2, lineEnd + 2 + size));
          at = lineEnd + 2 + size + 2;
        }
      }
    };
    const onData = (data) => {
      buffered = buffered.length === 0 ? data : Buffer.concat([buffered, data]);
      tryParse();
    };
    const onEnd = () => {
      if (bodyStart >= 0 && length < 0 && !chunked) finish(buffered.subarray(bodyStart));
      else {
        cleanup();
        reject(new Error("the connection closed before the response ended"));
      }
    };
    const onError = (error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("error", onError);
    };
    socket.on("data", onData);
    socket.on("end", onEnd);
    socket.on("error", onError);
  });
}

function open() {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host, noDelay: true });
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** One HTTP exchange, on `socket` or on a new connection that is closed afterwards. */
async function exchange(socket, head, body) {
  const own = socket === undefined;
  const s = own ? await open() : socket;
  try {
    const reply = readResponse(s);
    s.write(body ? Buffer.concat([head, body]) : head);
    return await reply;
  } finally {
    if (own) s.destroy();
  }
}

/** A protocol 4 pickle of the int n: the result the worker posts. */
function pickleInt(n) {
  return Buffer.from([0x80, 4, 0x4a, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24, 0x2e]);
}
function frames(sections) {
  const parts = [];
  for (const section of sections) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(section.length);
    parts.push(length, section);
  }
  return Buffer.concat(parts);
}

/** The host and peak memory a worker reports (a Python worker's usual peak). */
const WORKER_HOST = "node-1.cluster.example";
const PEAK_MEMORY_BYTES = 24_000_000;

let next = 1;
let failures = 0;
let firstFailure;
const latencies = [];
let measuring = false;
let stopping = false;

async function roundTrip(socket, task) {
  const path = `/v2/requests/${request}/tasks/${task}`;
  const get = Buffer.from(
    `GET ${path} HTTP/1.1\r\nHost: ${authority}\r\nAuthorization: ${authorization("GET", path, "")}\r\nConnection: ${connectionHeader}\r\n\r\n`,
    "latin1",
  );
  const fetched = await exchange(socket, get);
  if (fetched.status !== 200)
    throw new Error(`GET ${task}: HTTP ${fetched.status} ${fetched.body}`);
  // The worker reads the header to learn its first index.
  const headerLength = fetched.body.readUInt32BE(0);
  const header = JSON.parse(fetched.body.subarray(4, 4 + headerLength).toString("utf8"));
  const index = header.first;
  // The header as the Python worker writes it (encode_reports in sheepdog_worker.py), with
  // the facts it sends of each call: a trivial call prints nothing, so it has no log.
  const startedAt = Date.now();
  const columns = `{"index":[${index}],"kind":"result","startedAt":[${startedAt}],"endedAt":[${startedAt}],"peakMemoryBytes":${PEAK_MEMORY_BYTES},"attempt":1,"host":"${WORKER_HOST}"}`;
  const body = frames([Buffer.from(`{"version":2,"columns":${columns}}`), pickleInt(index)]);
  const hash = bodyHash(body);
  const post = Buffer.from(
    `POST ${path}/reports HTTP/1.1\r\nHost: ${authority}\r\nAuthorization: ${authorization("POST", `${path}/reports`, hash)}\r\n${BODY_HASH_HEADER}: ${hash}\r\nContent-Type: application/vnd.sheepdog.reports+frames\r\nContent-Length: ${body.length}\r\nConnection: ${connectionHeader}\r\n\r\n`,
    "latin1",
  );
  const posted = await exchange(socket, post, body);
  if (posted.status !== 200) throw new Error(`POST ${task}: HTTP ${posted.status} ${posted.body}`);
  const reply = JSON.parse(posted.body.toString("utf8"));
  if (reply.stored !== 1) throw new Error(`POST ${task}: stored ${reply.stored}`);
}

async function simulatedWorker() {
  const socket = keepAlive ? await open() : undefined;
  try {
    while (!stopping && next <= tasks) {
      const task = next++;
      const counted = measuring;
      const t0 = performance.now();
      try {
        await roundTrip(socket, task);
        if (counted && measuring) latencies.push(performance.now() - t0);
      } catch (error) {
        failures += 1;
        firstFailure ??= String(error);
      }
    }
  } finally {
    socket?.destroy();
  }
}

const workers = Array.from({ length: concurrency }, simulatedWorker);
await new Promise((resolve) => setTimeout(resolve, warmupMs));
measuring = true;
const started = performance.now();
await new Promise((resolve) => setTimeout(resolve, measureMs));
measuring = false;
const seconds = (performance.now() - started) / 1000;
stopping = true;
await Promise.all(workers);
if (next > tasks) throw new Error(`ran out of tasks (${tasks}); ask for a bigger request`);

latencies.sort((a, b) => a - b);
const pct = (p) =>
  latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
console.log(
  JSON.stringify({
    concurrency,
    connection: connectionHeader,
    roundTrips: latencies.length,
    seconds,
    perSecond: latencies.length / seconds,
    p50Ms: pct(50),
    p99Ms: pct(99),
    failures,
    firstFailure,
    tasksUsed: next - 1,
  }),
);
