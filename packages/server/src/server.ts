import type { RequestId, Store } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import { ArgsReadAhead } from "./internal/args-read-ahead.js";
import { portOf } from "./internal/auth.js";
import { BodyBudget } from "./internal/body.js";
import { nodeListener } from "./internal/dispatch.js";
import { Freshness } from "./internal/freshness.js";
import { listen } from "./internal/listen.js";
import { RequestCache } from "./internal/request-cache.js";
import { wireRoutes } from "./internal/routes.js";
import { source } from "./internal/source.js";
import { TaskClaims } from "./internal/task-claims.js";

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

/**
 * Checks a result's bytes: why the result is unusable, or `undefined` when it is fine, now or
 * as a promise. The server waits for a promise without holding other requests, but a check that
 * returns a value runs on the server's event loop: a check that can be slow (decoding a large
 * untrusted pickle) MUST do its work elsewhere (a worker thread) and answer with a promise.
 */
export type ResultCheck = (payload: Uint8Array) => string | undefined | Promise<string | undefined>;

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
  /**
   * The most bytes of request bodies read at once, across all connections (each body counts
   * its declared length, or `maxBodyBytes` when chunked); a post that does not fit is answered
   * 503, and its worker tries again. At least `maxBodyBytes`. @default 4 * maxBodyBytes
   */
  maxBodyBytesInFlight?: number;
  /** How long a request (headers and body) may take to arrive before a 408. @default 300000 */
  requestTimeoutMs?: number;
  /** Called for every report stored. More listeners can be added with `server.onReport`. */
  onReport?: ReportListener;
  /**
   * An extra check of each result's bytes (for example, that they decode as a pickle): it
   * returns (or resolves with) why a result is unusable, or `undefined` when it is fine. An
   * unusable result is stored as an error for its task alone, with that reason as the error
   * text; the rest of the post is stored as usual. The post is answered once the checks of all
   * its results are done; other requests are served meanwhile. A check that throws or rejects
   * counts as a server failure (500, nothing of the post is stored). See {@link ResultCheck}.
   */
  checkResult?: ResultCheck;
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
  /**
   * The largest request body it accepts (see {@link ServerOptions.maxBodyBytes}): what a
   * worker's launch passes on as `maxBodyBytes`, so that it never sends a post that is sure to
   * be refused, and turns a result too large for it into that task's error at once.
   */
  readonly maxBodyBytes: number;
  /** Adds a listener for stored reports; returns a function that removes it. */
  onReport(listener: ReportListener): () => void;
  /**
   * Accepts workers that reach this server through another route: signed requests whose
   * `Host` is `authority` (`host:port`, e.g. a relay on a cluster's head node that carries
   * connections here). Requests signed for any other host and port than this server's own
   * port are refused, so a request signed for one server cannot be replayed to another.
   * Returns a function that stops accepting it.
   */
  acceptRoute(authority: string): () => void;
  /**
   * How many requests came in through `authority` while it was accepted (0 once it is not):
   * a relay that carried none has no answer of this server still on its way to a worker.
   */
  routeRequests(authority: string): number;
  /**
   * Closes chunk task `task` of request `request` to claims (the client is recording how its
   * array task ended) and resolves the request's claims as this server knows them: claimed
   * task -> the array task that holds it (see `claims` in `wire.ts` of `@sheepdog/contracts`).
   * Undefined when the request does not let tasks claim, or is not found.
   */
  settleTask(request: RequestId, task: number): Promise<ReadonlyMap<number, number> | undefined>;
  /**
   * The array tasks of request `request` that can find no work, as this server knows: once
   * every chunk task is taken and no claim is under way, those whose own task another array
   * task claimed and that hold no claim themselves. Empty until then, and when the request does
   * not let tasks claim or is not found. A client cancels them, so that they never start.
   */
  idleTasks(request: RequestId): Promise<number[]>;
  /**
   * Holds the workers' calls for request `request` until `until` settles, then serves them as
   * usual: the request's store write is under way (see `onCreating` of `NewRequest` in
   * `@sheepdog/contracts`) and its job queued meanwhile, and a task that fetched before the
   * write ended would otherwise find no such request (and be refused). Each held call still
   * answers within the server's request timeout.
   */
  holdRequest(request: RequestId, until: Promise<unknown>): void;
  /** Stops listening and closes connections once their requests finish. Idempotent. */
  close(): Promise<void>;
}

const AUTHORITY_PATTERN = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):[0-9]{1,5}$/;

/** A route's `host:port`, lower case, or `CONFIG_INVALID`. */
function checkAuthority(authority: string): string {
  if (typeof authority !== "string" || !AUTHORITY_PATTERN.test(authority)) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `A route is a host and port, like "head.example.org:40123", not ${JSON.stringify(String(authority)).slice(0, 80)}.`,
    );
  }
  return authority.toLowerCase();
}

function defaultOnError(error: unknown): void {
  const detail = error instanceof Error ? error.message : String(error);
  console.error(`[sheepdog] [${source}] ${detail}`);
}

/** The options with their defaults, checked. */
function resolvedOptions(options: ServerOptions) {
  const port = options.port ?? 0;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const requestTimeoutMs = options.requestTimeoutMs ?? 300_000;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `port must be an integer from 0 to 65535 (0 picks a free port), not ${String(options.port)}.`,
    );
  }
  if (!Number.isSafeInteger(requestTimeoutMs) || requestTimeoutMs < 100) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      "requestTimeoutMs must be an integer number of milliseconds, at least 100.",
    );
  }
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1024) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      "maxBodyBytes must be an integer of at least 1024.",
    );
  }
  const maxBodyBytesInFlight = options.maxBodyBytesInFlight ?? 4 * maxBodyBytes;
  if (!Number.isSafeInteger(maxBodyBytesInFlight) || maxBodyBytesInFlight < maxBodyBytes) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `maxBodyBytesInFlight must be an integer of at least maxBodyBytes (${maxBodyBytes}).`,
    );
  }
  const host = options.host ?? "0.0.0.0";
  return {
    host,
    port,
    maxBodyBytes,
    maxBodyBytesInFlight,
    requestTimeoutMs,
    onError: options.onError ?? defaultOnError,
  };
}

/**
 * Starts the HTTP server that workers fetch tasks from and report to (wire protocol v2, see
 * `@sheepdog/contracts`), serving every request in `store`. Workers sign each request with
 * their request's key (the stored token hash) and the server proves each answer with it.
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
  const resolved = resolvedOptions(options);
  const { host, port, maxBodyBytes, requestTimeoutMs, onError } = resolved;
  const listeners = new Set<ReportListener>();
  if (options.onReport) listeners.add(options.onReport);
  const emit = (event: ReportEvent): void => {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        onError(error);
      }
    }
  };
  const cache = new RequestCache(options.store);
  const readAhead = new ArgsReadAhead(options.store);
  const claims = new TaskClaims(options.store);
  const freshness = new Freshness(Date.now());
  let listeningPort = -1;
  /** The routes accepted (see acceptRoute): how many accept each, and its requests so far. */
  const routesIn = new Map<string, { holders: number; requests: number }>();
  const hostAccepted = (host: string | null): boolean => {
    if (portOf(host) === listeningPort) return true;
    const route = host === null ? undefined : routesIn.get(host.toLowerCase());
    if (route) route.requests++;
    return route !== undefined;
  };
  const routes = wireRoutes({
    store: options.store,
    cache,
    readAhead,
    freshness,
    hostAccepted,
    maxBodyBytes,
    budget: new BodyBudget(resolved.maxBodyBytesInFlight),
    checkResult: options.checkResult,
    onError,
    emit,
    claims,
  });
  const listening = await listen(
    { host, port, requestTimeoutMs, onError },
    nodeListener(routes, onError),
  );
  listeningPort = listening.port;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= listening.close().then(() => {
      listeners.clear();
      cache.clear();
      readAhead.clear();
      freshness.clear();
      claims.clear();
    });
    return closing;
  };
  return {
    url: listening.url,
    port: listening.port,
    host,
    maxBodyBytes,
    onReport(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    acceptRoute(authority) {
      const key = checkAuthority(authority);
      const route = routesIn.get(key) ?? { holders: 0, requests: 0 };
      route.holders++;
      routesIn.set(key, route);
      let removed = false;
      return () => {
        if (removed) return;
        removed = true;
        route.holders--;
        if (route.holders === 0) routesIn.delete(key);
      };
    },
    routeRequests(authority) {
      return routesIn.get(authority.toLowerCase())?.requests ?? 0;
    },
    holdRequest(request, until) {
      cache.hold(request, until);
    },
    async settleTask(request, task) {
      const snapshot = await cache.get(request).catch(() => undefined);
      return snapshot && claims.settle(request, snapshot.layout, task);
    },
    async idleTasks(request) {
      const snapshot = await cache.get(request).catch(() => undefined);
      return snapshot ? claims.idleTasks(request, snapshot.layout) : [];
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
