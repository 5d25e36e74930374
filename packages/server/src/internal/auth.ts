import type { MacKey, RequestId, WorkerAuthorization } from "@sheepdog/contracts";
import {
  AUTH_SCHEME,
  parseWorkerAuthorization,
  SheepdogError,
  workerMacMatches,
} from "@sheepdog/contracts";
import type { Freshness } from "./freshness.js";
import type { RequestCache, RequestSnapshot } from "./request-cache.js";
import { WireError } from "./wire-error.js";

/** What a worker request says about itself, as the check reads it. */
export interface SignedRequest {
  method: string;
  /** The request target as sent (path and query). */
  target: string;
  host: string | null;
  authorization: string | null;
  /** The `Sheepdog-Content-SHA256` header of a post; `null` for a GET. */
  bodyHash: string | null;
}

/** What the server's proof of an answer needs (wire protocol v2). */
export interface AnswerContext {
  key: MacKey;
  method: string;
  path: string;
  nonce: string;
}

/**
 * One request's authentication state: `answer` is set once its MAC is found right, and then
 * every answer to it (errors included) carries the server's proof.
 */
export interface Session {
  answer: AnswerContext | undefined;
}

/** What the check works with: the server's request cache, nonces, port and clock. */
export interface AuthContext {
  cache: RequestCache;
  freshness: Freshness;
  /**
   * Whether a signed `Host` names this server: its own port (under any name), or a route to
   * it that it was told of (a relay's `host:port`).
   */
  hostAccepted: (host: string | null) => boolean;
  /** A store failure as an answer (503); an unknown request is answered like a wrong MAC. */
  storeFailure: (error: unknown) => WireError;
  now: () => number;
}

const BODY_HASH_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const HOST_PATTERN = /^(?:\[[0-9A-Fa-f:.]+\]|[^:[\]]*)(?::([0-9]{1,5}))?$/;

/**
 * The one answer to every request that is not authenticated, whether or not its request
 * exists. The connection is closed after it, so that a body sent with it is never read.
 */
function unauthenticated(): WireError {
  return new WireError(401, "This needs a valid Sheepdog authorization for its request.", {
    "www-authenticate": AUTH_SCHEME,
    connection: "close",
  });
}

/** The port a `Host` header names (80 when it names none), or `undefined` when malformed. */
export function portOf(host: string | null): number | undefined {
  const match = host === null ? null : HOST_PATTERN.exec(host);
  if (match === null) return undefined;
  return match[1] === undefined ? 80 : Number(match[1]);
}

function isUnknownRequest(error: unknown): boolean {
  return SheepdogError.isInstance(error) && error.code === "REQUEST_NOT_FOUND";
}

/**
 * Checks a worker request's signature against request `id` (wire protocol v2) and gives the
 * request's snapshot: at once when the request is cached, else as a promise; sets
 * `session.answer` once the MAC is right. Throws (or rejects) with the one 401 of
 * {@link unauthenticated} for a missing or malformed header, a `Host` of another server, an
 * unknown request, a wrong MAC or a nonce seen before; with a proven 401 carrying the server's
 * clock for a right MAC whose time is out of the window; with 503 when the store fails.
 * Nothing of the body is read.
 */
export function authenticate(
  context: AuthContext,
  request: SignedRequest,
  id: RequestId,
  session: Session,
): RequestSnapshot | Promise<RequestSnapshot> {
  const signature = parseWorkerAuthorization(request.authorization);
  if (signature === undefined || !context.hostAccepted(request.host)) throw unauthenticated();
  // A GET's body is never read, so its signature covers none (whatever headers it has).
  const bodyHash = request.method === "GET" ? "" : (request.bodyHash ?? "");
  if (request.method !== "GET" && !BODY_HASH_PATTERN.test(bodyHash)) throw unauthenticated();
  const cached = context.cache.ready(id);
  if (cached !== undefined) return verified(context, request, signature, bodyHash, cached, session);
  return context.cache.get(id).then(
    (snapshot) => verified(context, request, signature, bodyHash, snapshot, session),
    (error: unknown) => {
      if (isUnknownRequest(error)) throw unauthenticated();
      throw context.storeFailure(error);
    },
  );
}

/** The rest of {@link authenticate}, once the request's snapshot is known. */
function verified(
  context: AuthContext,
  request: SignedRequest,
  signature: WorkerAuthorization,
  bodyHash: string,
  snapshot: RequestSnapshot,
  session: Session,
): RequestSnapshot {
  const facts = {
    method: request.method,
    host: request.host as string,
    path: request.target,
    nonce: signature.nonce,
    time: signature.time,
    bodyHash,
  };
  if (!workerMacMatches(snapshot.key, facts, signature.mac)) throw unauthenticated();
  const now = context.now();
  if (!context.freshness.inWindow(signature.time, now)) {
    session.answer = {
      key: snapshot.key,
      method: request.method,
      path: request.target,
      nonce: signature.nonce,
    };
    const seconds = Math.round((signature.time - now) / 1000);
    throw new WireError(
      401,
      `The request's time is ${seconds} s off the server's clock, or older than the server. Sign it again with the server's time.`,
      {},
      { serverTime: now },
    );
  }
  if (!context.freshness.firstUse(signature.nonce, signature.time, now)) throw unauthenticated();
  session.answer = {
    key: snapshot.key,
    method: request.method,
    path: request.target,
    nonce: signature.nonce,
  };
  return snapshot;
}
