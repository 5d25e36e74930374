import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { ReportsReply, RequestId, Store, TaskHeader } from "@sheepdog/contracts";
import {
  REPORTS_CONTENT_TYPE,
  SheepdogError,
  TASK_CONTENT_TYPE,
  tokenMatches,
  WIRE_VERSION,
} from "@sheepdog/contracts";
import type { H3Event } from "h3";
import { H3, toNodeHandler } from "h3";
import type { ReportFrame } from "./frames.js";
import { decodeReports, encodeTaskFrames } from "./frames.js";
import { ArgsReadAhead } from "./internal/args-read-ahead.js";
import { readLimitedBody } from "./internal/body.js";
import type { RequestSnapshot } from "./internal/request-cache.js";
import { arrayTaskCount, RequestCache } from "./internal/request-cache.js";
import type { Reply } from "./internal/wire-error.js";
import {
  errorReply,
  errorResponse,
  genericMessage,
  jsonReply,
  toResponse,
  WireError,
} from "./internal/wire-error.js";

/** The default body limit: a 64 MiB result plus room for the frame header. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024 + 64 * 1024;

/** One report that the server stored (duplicates are not announced). */
export interface ReportEvent {
  request: RequestId;
  /** The store index (0-based) of the argument tuple. */
  index: number;
  kind: "result" | "error";
}

/** Called for every report the server stores. */
export type ReportListener = (event: ReportEvent) => void;

/** Options of {@link startServer}. */
export interface ServerOptions {
  /** Where requests are read and reports written. The caller keeps ownership (and closes it). */
  store: Store;
  /** The TCP port; `0` picks a free one. @default 0 */
  port?: number;
  /** The address to listen on. @default "0.0.0.0" */
  host?: string;
  /** The largest request body accepted; larger ones are refused with 413. @default 64 MiB + 64 KiB */
  maxBodyBytes?: number;
  /** How long a request (headers and body) may take to arrive before a 408. @default 300000 */
  requestTimeoutMs?: number;
  /** Called for every report stored. More listeners can be added with `server.onReport`. */
  onReport?: ReportListener;
  /**
   * An extra check of each result's bytes (for example, that they decode as a pickle): it
   * returns why a result is unusable, or `undefined` when it is fine. An unusable result is
   * stored as an error for its task alone, with that reason as the error text; the rest of the
   * post is stored as usual. A check that throws counts as a server failure (500).
   */
  checkResult?: (payload: Uint8Array) => string | undefined;
  /**
   * Told about failures that are not the client's fault (the store failing, a bug). They are
   * answered 503 or 500 with a generic message. @default writes one line to stderr
   */
  onError?: (error: unknown) => void;
}

/** A running server; see {@link startServer}. */
export interface SheepdogServer extends AsyncDisposable {
  /** The base URL on this machine, e.g. `http://127.0.0.1:41234` (no trailing slash). */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** The address it listens on. */
  readonly host: string;
  /** Adds a listener for stored reports; returns a function that removes it. */
  onReport(listener: ReportListener): () => void;
  /** Stops listening and closes connections once their requests finish. Idempotent. */
  close(): Promise<void>;
}

/** The arguments a task covers: `first .. first + count - 1`, or a retry task's `indices`. */
interface TaskRange {
  first: number;
  count: number;
  indices?: readonly number[];
}

/** One report to write, as `Store.putReports` takes it. */
type StoreReport =
  | { index: number; kind: "result"; value: Uint8Array }
  | { index: number; kind: "error"; value: string };

/**
 * What the worker routes read of a request: a structural part of h3's event, which the direct
 * path (see {@link DIRECT_ROUTE}) builds from a Node request without h3.
 */
interface WireEvent {
  readonly context: { readonly params?: Readonly<Record<string, string>> | undefined };
  readonly req: Parameters<typeof readLimitedBody>[0];
}

/**
 * The worker routes, in their plain spelling (no query, no encoded characters): a GET of a
 * task, a POST of reports. They are answered straight from Node's request, skipping h3's
 * web Request and Response, which cost more than the route's own work. Anything else, these
 * paths with another method or spelling included, goes through h3.
 */
const DIRECT_ROUTE = /^\/v1\/requests\/([1-9][0-9]{0,14})\/tasks\/([1-9][0-9]{0,14})(\/reports)?$/;

/** The h3-shaped view of a Node request on a direct route. */
function directEvent(req: IncomingMessage, request: string, task: string): WireEvent {
  return {
    context: { params: { request, task } },
    req: {
      headers: {
        get(name: string): string | null {
          const value = req.headers[name.toLowerCase()];
          if (value === undefined) return null;
          return Array.isArray(value) ? value.join(", ") : value;
        },
      },
      body: null,
      runtime: { node: { req } },
    },
  };
}

/** Writes a reply to a Node response (the direct path). */
function writeReply(res: ServerResponse, reply: Reply): void {
  if (res.headersSent || res.destroyed) return;
  const length =
    typeof reply.body === "string" ? Buffer.byteLength(reply.body) : reply.body.byteLength;
  res.writeHead(reply.status, { ...reply.headers, "content-length": String(length) });
  res.end(reply.body);
}

const ID_PATTERN = /^[1-9][0-9]{0,14}$/;
const BEARER_PATTERN = /^bearer +([A-Za-z0-9._~+/=-]{1,512}) *$/i;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function parseId(value: string | undefined, what: string): number {
  if (value === undefined || !ID_PATTERN.test(value)) {
    throw new WireError(400, `The ${what} in the path must be a positive integer.`);
  }
  return Number(value);
}

/**
 * Whether two tokens are the same, in time that depends on their length only (tokens have one
 * length, so it tells nothing).
 */
function sameToken(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

function isPickle(payload: Uint8Array): boolean {
  // Protocol 2 and later start with PROTO <version> and every pickle ends with STOP.
  const version = payload[1];
  return (
    payload.byteLength >= 3 &&
    payload[0] === 0x80 &&
    version !== undefined &&
    version >= 2 &&
    version <= 5 &&
    payload[payload.byteLength - 1] === 0x2e
  );
}

function defaultOnError(error: unknown): void {
  const detail = error instanceof Error ? error.message : String(error);
  console.error(`[sheepdog] [server] ${detail}`);
}

function listenError(error: NodeJS.ErrnoException, host: string, port: number): SheepdogError {
  if (error.code === "EADDRINUSE") {
    return new SheepdogError(
      "SERVER_FAILED",
      "server",
      `Port ${port} on ${host} is in use by another program. Choose another port, leave the port unset to pick a free one, or stop the program using it.`,
      { cause: error },
    );
  }
  if (error.code === "EACCES") {
    return new SheepdogError(
      "SERVER_FAILED",
      "server",
      `Not allowed to listen on port ${port} on ${host}. Choose a port above 1023, or leave the port unset to pick a free one.`,
      { cause: error },
    );
  }
  if (error.code === "EADDRNOTAVAIL" || error.code === "ENOTFOUND") {
    return new SheepdogError(
      "SERVER_FAILED",
      "server",
      `This machine has no address ${host} to listen on. Use "0.0.0.0" to listen on every address.`,
      { cause: error },
    );
  }
  return SheepdogError.from(
    error,
    "SERVER_FAILED",
    "server",
    `Cannot listen on port ${port} on ${host}`,
  );
}

function baseUrl(host: string, port: number): string {
  if (host === "0.0.0.0" || host === "") return `http://127.0.0.1:${port}`;
  if (host === "::") return `http://[::1]:${port}`;
  return host.includes(":") ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}

/**
 * Starts the HTTP server that workers fetch tasks from and report to (wire protocol v1, see
 * `@sheepdog/contracts`), serving every request in `store`.
 *
 * Rejects with a `SheepdogError` (`SERVER_FAILED`) when the port is taken or cannot be used.
 *
 * @example
 * ```ts
 * await using server = await startServer({ store, port: 0 });
 * server.onReport(({ request, index, kind }) => console.log(request, index, kind));
 * console.log(server.url);
 * ```
 */
export async function startServer(options: ServerOptions): Promise<SheepdogServer> {
  const store = options.store;
  const host = options.host ?? "0.0.0.0";
  const requestedPort = options.port ?? 0;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const onError = options.onError ?? defaultOnError;
  const checkResult = options.checkResult;
  if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      "server",
      `port must be an integer from 0 to 65535 (0 picks a free port), not ${String(options.port)}.`,
    );
  }
  if (
    options.requestTimeoutMs !== undefined &&
    (!Number.isSafeInteger(options.requestTimeoutMs) || options.requestTimeoutMs < 100)
  ) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      "server",
      "requestTimeoutMs must be an integer number of milliseconds, at least 100.",
    );
  }
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1024) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      "server",
      "maxBodyBytes must be an integer of at least 1024.",
    );
  }

  const listeners = new Set<ReportListener>();
  if (options.onReport) listeners.add(options.onReport);
  const cache = new RequestCache(store);
  const readAhead = new ArgsReadAhead(store);
  /** A token that matched a request's hash once, so later checks need no hashing. */
  const knownTokens = new WeakMap<RequestSnapshot, string>();

  function emit(event: ReportEvent): void {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        onError(error);
      }
    }
  }

  function storeFailure(error: unknown): WireError {
    if (SheepdogError.isInstance(error)) {
      if (error.code === "REQUEST_NOT_FOUND") return new WireError(404, "No such request.");
      if (error.code === "TASK_NOT_FOUND") return new WireError(404, "No such task.");
    }
    onError(error);
    return new WireError(503, "The server cannot use its store right now. Try again later.", {
      "retry-after": "1",
    });
  }

  async function authorised(event: WireEvent, requestId: number): Promise<RequestSnapshot> {
    let snapshot: RequestSnapshot;
    try {
      snapshot = await cache.get(requestId);
    } catch (error) {
      throw storeFailure(error);
    }
    const match = BEARER_PATTERN.exec(event.req.headers.get("authorization") ?? "");
    const token = match?.[1];
    const known = knownTokens.get(snapshot);
    if (token !== undefined && known !== undefined && sameToken(token, known)) return snapshot;
    if (token === undefined || !tokenMatches(token, snapshot.tokenHash)) {
      throw new WireError(401, "A valid bearer token for this request is required.", {
        "www-authenticate": 'Bearer realm="sheepdog"',
      });
    }
    knownTokens.set(snapshot, token);
    return snapshot;
  }

  /** The argument indices of a task: a chunk, or a retry task's list (wire.ts). */
  async function taskRange(snapshot: RequestSnapshot, task: number): Promise<TaskRange> {
    const chunked = arrayTaskCount(snapshot);
    if (task <= chunked) {
      const first = (task - 1) * snapshot.chunkSize;
      return { first, count: Math.min(snapshot.chunkSize, snapshot.tasks - first) };
    }
    let retryTasks = snapshot.retryTasks;
    if (task > chunked + retryTasks.length) {
      // Retry tasks are added to the request's meta while it runs: read it again.
      try {
        retryTasks = (await cache.refresh(snapshot.id)).retryTasks;
      } catch (error) {
        throw storeFailure(error);
      }
    }
    const indices = retryTasks[task - chunked - 1];
    if (indices === undefined) throw new WireError(404, "No such task.");
    return { first: indices[0] as number, count: indices.length, indices };
  }

  /** The arguments of a task's indices, reading runs of consecutive indices at once. */
  async function argsOf(snapshot: RequestSnapshot, range: TaskRange): Promise<Uint8Array[]> {
    const requestId = snapshot.id;
    if (range.indices === undefined) {
      return range.count === 1 && snapshot.chunkSize === 1
        ? readAhead.get(requestId, range.first, snapshot.tasks)
        : store.getArgs(requestId, range.first, range.count);
    }
    const args: Uint8Array[] = [];
    const { indices } = range;
    for (let i = 0; i < indices.length; ) {
      let end = i + 1;
      while (end < indices.length && indices[end] === (indices[end - 1] as number) + 1) end++;
      args.push(...(await store.getArgs(requestId, indices[i] as number, end - i)));
      i = end;
    }
    return args;
  }

  /** The handler's reply, or the error reply for what it threw. */
  function guarded(handler: (event: WireEvent) => Promise<Reply>) {
    return async (event: WireEvent): Promise<Reply> => {
      try {
        return await handler(event);
      } catch (error) {
        if (error instanceof WireError) {
          return errorReply(error.status, error.message, error.headers);
        }
        onError(error);
        return errorReply(500, "Internal server error.");
      }
    };
  }

  async function fetchTask(event: WireEvent): Promise<Reply> {
    const requestId = parseId(event.context.params?.request, "request id");
    const task = parseId(event.context.params?.task, "task number");
    const snapshot = await authorised(event, requestId);
    const range = await taskRange(snapshot, task);
    let args: Uint8Array[];
    try {
      args = await argsOf(snapshot, range);
    } catch (error) {
      throw storeFailure(error);
    }
    const header: TaskHeader = {
      version: WIRE_VERSION,
      request: requestId,
      task,
      first: range.first,
      count: range.count,
      ...(range.indices && { indices: [...range.indices] }),
    };
    const body = encodeTaskFrames({ header, func: snapshot.func, ns: snapshot.ns, args });
    return {
      status: 200,
      headers: {
        "content-type": TASK_CONTENT_TYPE,
        "content-length": String(body.byteLength),
        "cache-control": "no-store",
      },
      body,
    };
  }

  async function postReports(event: WireEvent): Promise<Reply> {
    const requestId = parseId(event.context.params?.request, "request id");
    const task = parseId(event.context.params?.task, "task number");
    const snapshot = await authorised(event, requestId);
    const range = await taskRange(snapshot, task);
    const members = range.indices && new Set(range.indices);
    const inTask = members
      ? (index: number) => members.has(index)
      : (index: number) => index >= range.first && index < range.first + range.count;
    const contentType = (event.req.headers.get("content-type") ?? "").split(";")[0]?.trim();
    if (contentType?.toLowerCase() !== REPORTS_CONTENT_TYPE) {
      throw new WireError(415, `Reports must be sent as ${REPORTS_CONTENT_TYPE}.`);
    }
    const encoding = event.req.headers.get("content-encoding");
    if (encoding !== null && encoding.trim().toLowerCase() !== "identity") {
      throw new WireError(415, "Reports must be sent without a Content-Encoding.");
    }
    const body = await readLimitedBody(event.req, maxBodyBytes);
    let reports: ReportFrame[];
    try {
      reports = decodeReports(body);
    } catch (error) {
      if (SheepdogError.isInstance(error)) {
        throw new WireError(400, error.message.replace(/^\[sheepdog\] \[server\] /, ""));
      }
      throw error;
    }
    const seen = new Set<number>();
    const writes: StoreReport[] = [];
    for (const report of reports) {
      if (!inTask(report.index)) {
        throw new WireError(400, "A report's index is outside this task's range.");
      }
      if (seen.has(report.index)) {
        throw new WireError(400, "A post carries two reports for the same index.");
      }
      seen.add(report.index);
      if (report.kind === "error") {
        let text: string;
        try {
          text = strictUtf8.decode(report.payload);
        } catch {
          throw new WireError(400, "An error report is not UTF-8 text.");
        }
        writes.push({ index: report.index, kind: "error", value: text });
      } else {
        if (!isPickle(report.payload)) {
          throw new WireError(400, "A result is not a pickle of protocol 2 to 5.");
        }
        const unusable = checkResult?.(report.payload);
        writes.push(
          unusable === undefined
            ? { index: report.index, kind: "result", value: report.payload }
            : { index: report.index, kind: "error", value: unusable },
        );
      }
    }

    const reply: ReportsReply = { stored: 0, duplicates: 0 };
    const settle = (write: StoreReport, stored: boolean) => {
      if (!stored) {
        reply.duplicates += 1;
        return;
      }
      reply.stored += 1;
      emit({ request: requestId, index: write.index, kind: write.kind });
    };
    try {
      // Use the store's batch write when it has one (`Store.putReports`, optional).
      const batch = (
        store as {
          putReports?: (id: RequestId, reports: readonly StoreReport[]) => Promise<boolean[]>;
        }
      ).putReports;
      if (batch !== undefined && writes.length > 1) {
        const stored = await batch.call(store, requestId, writes);
        for (const [i, write] of writes.entries()) settle(write, stored[i] === true);
      } else {
        for (const write of writes) {
          const stored =
            write.kind === "error"
              ? await store.putError(requestId, write.index, write.value)
              : await store.putResult(requestId, write.index, write.value);
          settle(write, stored);
        }
      }
    } catch (error) {
      throw storeFailure(error);
    }
    return jsonReply(reply);
  }

  const app = new H3({
    // Failures go to onError, never straight to the console.
    silent: true,
    onError(error) {
      // Errors h3 raises itself (no such route, a malformed URL): a generic message, never
      // the path that was asked for.
      const status = error.status >= 400 && error.status <= 599 ? error.status : 500;
      if (status >= 500) onError(error.cause ?? error);
      return errorResponse(status, genericMessage(status));
    },
  });
  const methodNotAllowed = (allow: string) => () =>
    errorResponse(405, genericMessage(405), { allow });
  const serveTask = guarded(fetchTask);
  const serveReports = guarded(postReports);
  const viaH3 = (route: (event: WireEvent) => Promise<Reply>) => async (event: H3Event) =>
    toResponse(await route(event));
  app.get("/health", viaH3(guarded(async () => jsonReply({ ok: true, version: WIRE_VERSION }))));
  app.head("/health", () => new Response(null, { status: 200 }));
  app.all("/health", methodNotAllowed("GET, HEAD"));
  app.get("/v1/requests/:request/tasks/:task", viaH3(serveTask));
  app.all("/v1/requests/:request/tasks/:task", methodNotAllowed("GET"));
  app.post("/v1/requests/:request/tasks/:task/reports", viaH3(serveReports));
  app.all("/v1/requests/:request/tasks/:task/reports", methodNotAllowed("POST"));

  const h3Listener = toNodeHandler(app);
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    const direct = req.url === undefined ? null : DIRECT_ROUTE.exec(req.url);
    if (direct !== null && req.method === (direct[3] === undefined ? "GET" : "POST")) {
      const event = directEvent(req, direct[1] as string, direct[2] as string);
      const route = direct[3] === undefined ? serveTask : serveReports;
      route(event).then(
        (reply) => writeReply(res, reply),
        (error: unknown) => {
          onError(error);
          writeReply(res, errorReply(500, "Internal server error."));
        },
      );
      return;
    }
    void h3Listener(req, res);
  };

  const requestTimeout = options.requestTimeoutMs ?? 300_000;
  const server = createServer(
    {
      requestTimeout,
      headersTimeout: Math.min(60_000, requestTimeout),
      // How often node looks for requests past their time; it answers those with 408.
      connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(requestTimeout / 4))),
      keepAliveTimeout: 5_000,
    },
    listener,
  );

  await new Promise<void>((resolve, reject) => {
    const onListenError = (error: NodeJS.ErrnoException) => {
      reject(listenError(error, host, requestedPort));
    };
    server.once("error", onListenError);
    server.listen(requestedPort, host, () => {
      server.off("error", onListenError);
      resolve();
    });
  });
  server.on("error", onError);
  const port = (server.address() as AddressInfo).port;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      const force = setTimeout(() => server.closeAllConnections(), 2_000);
      force.unref();
      server.close(() => {
        clearTimeout(force);
        listeners.clear();
        cache.clear();
        readAhead.clear();
        resolve();
      });
      server.closeIdleConnections();
    });
    return closing;
  };

  return {
    url: baseUrl(host, port),
    port,
    host,
    onReport(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
