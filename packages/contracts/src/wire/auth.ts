import { createHmac, hash, randomBytes } from "node:crypto";

/*
 * Authentication of wire protocol v2, both ways (see `wire.ts`): workers sign each request
 * with HMAC-SHA256 under the request's key, and the server proves each answer under the same
 * key. The key is the SHA-256 of the request's token (`hashToken`), which is what a store
 * keeps: the server never holds the token, and the token never travels.
 */

/** The scheme of a worker's `Authorization` header: `Sheepdog <nonce>.<time>.<mac>`. */
export const AUTH_SCHEME = "Sheepdog";
/** The header of a worker's post that carries the SHA-256 of its body (base64url). */
export const BODY_HASH_HEADER = "sheepdog-content-sha256";
/** The header of the server's proof on every answer to an authenticated request. */
export const PROOF_HEADER = "sheepdog-proof";
/**
 * How far a request's time may lie behind the server's clock, in milliseconds. The server
 * remembers every nonce it accepted for this long (plus {@link REQUEST_TIME_AHEAD_MS}), so a
 * request can be used once only.
 */
export const REQUEST_TIME_BEHIND_MS = 60_000;
/** How far a request's time may lie ahead of the server's clock, in milliseconds. */
export const REQUEST_TIME_AHEAD_MS = 10_000;

const WORKER_CONTEXT = "sheepdog-worker-v2";
const SERVER_CONTEXT = "sheepdog-server-v2";
const STAGED_CONTEXT = "sheepdog-staged-v2";
const SPOOL_CONTEXT = "sheepdog-spool-v2";
const AUTHORIZATION_PATTERN =
  /^sheepdog ([A-Za-z0-9_-]{22})\.([1-9][0-9]{0,14})\.([A-Za-z0-9_-]{43})$/i;

/**
 * A request's key, prepared for HMAC-SHA256: the padded inner and outer key blocks of RFC 2104,
 * computed once per key. Make one with {@link macKey}.
 */
export interface MacKey {
  readonly raw: Uint8Array;
  readonly inner: Uint8Array;
  /** The outer key block followed by room for the inner digest (written as a string). */
  readonly outer: Buffer;
}

/** The facts of a worker request that its signature covers. */
export interface WorkerRequestFacts {
  /** `GET` or `POST`, as sent. */
  method: string;
  /** The `Host` header as sent: the authority of the worker's URL, e.g. `head.example:8123`. */
  host: string;
  /** The request target as sent: the path and any query, e.g. `/v2/requests/7/tasks/3`. */
  path: string;
  /** 22 base64url characters: 16 random bytes, new for every request. */
  nonce: string;
  /** The worker's clock when it signed, in milliseconds since the Unix epoch. */
  time: number;
  /** The base64url SHA-256 of the body ({@link BODY_HASH_HEADER}); `""` for a GET. */
  bodyHash: string;
}

/** The facts of an answer that the server's proof covers (besides its body). */
export interface AnswerFacts {
  method: string;
  path: string;
  /** The nonce of the request answered. */
  nonce: string;
  /** The HTTP status of the answer. */
  status: number;
}

/** A worker's `Authorization` header, taken apart (not yet checked against a key). */
export interface WorkerAuthorization {
  nonce: string;
  time: number;
  mac: string;
}

/** Prepares a request's key (its token's SHA-256, as `hashToken` gives it) for signing. */
export function macKey(key: Uint8Array): MacKey {
  const inner = new Uint8Array(64).fill(0x36);
  const outer = Buffer.alloc(96, 0x5c);
  const block = key.byteLength > 64 ? hash("sha256", key, "buffer") : key;
  for (let i = 0; i < block.byteLength; i++) {
    inner[i] = (inner[i] as number) ^ (block[i] as number);
    outer[i] = (outer[i] as number) ^ (block[i] as number);
  }
  return { raw: Uint8Array.from(key), inner, outer };
}

// Room for a short message; longer ones (bodies) go through createHmac. JavaScript runs one
// call at a time, and each call fills it before it reads it.
const scratch = Buffer.allocUnsafe(16 * 1024);

/** base64url HMAC-SHA256 of `text` (UTF-8) followed by `body`. */
function hmacBase64url(key: MacKey, text: string, body?: string | Uint8Array): string {
  const bodyBytes =
    body === undefined ? 0 : typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;
  if (64 + 3 * text.length + bodyBytes > scratch.byteLength) {
    const mac = createHmac("sha256", key.raw).update(text);
    if (body !== undefined) mac.update(body);
    return mac.digest("base64url");
  }
  // RFC 2104: H((K ^ opad) || H((K ^ ipad) || message)), with one-shot hashes (createHmac
  // costs about twice as much for a short message).
  scratch.set(key.inner, 0);
  let length = 64 + scratch.write(text, 64, "utf8");
  if (typeof body === "string") length += scratch.write(body, length, "utf8");
  else if (body !== undefined) {
    scratch.set(body, length);
    length += body.byteLength;
  }
  // The inner digest goes through a "binary" (latin1) string, one character per byte, exact:
  // Node's one-shot hash takes about three times as long to give a Buffer.
  key.outer.write(hash("sha256", scratch.subarray(0, length), "binary"), 64, "binary");
  return hash("sha256", key.outer, "base64url");
}

/** Whether two strings are equal, in time that depends on their length only. */
function sameText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

/** A new nonce: 16 random bytes, base64url (22 characters). */
export function newNonce(): string {
  return randomBytes(16).toString("base64url");
}

/** The base64url SHA-256 of a body, as {@link BODY_HASH_HEADER} carries it. */
export function bodyHash(body: Uint8Array): string {
  return hash("sha256", body, "base64url");
}

/**
 * The text a worker signs: `sheepdog-worker-v2`, method, host, path, nonce, time and body hash,
 * joined by line feeds (none of them can hold one).
 */
function workerText(facts: WorkerRequestFacts): string {
  return `${WORKER_CONTEXT}\n${facts.method}\n${facts.host}\n${facts.path}\n${facts.nonce}\n${facts.time}\n${facts.bodyHash}`;
}

/** A worker request's MAC: base64url HMAC-SHA256 under the request's key. */
export function workerMac(key: MacKey, facts: WorkerRequestFacts): string {
  return hmacBase64url(key, workerText(facts));
}

/** Whether `mac` is the MAC of `facts` under `key`, compared in constant time. */
export function workerMacMatches(key: MacKey, facts: WorkerRequestFacts, mac: string): boolean {
  return sameText(workerMac(key, facts), mac);
}

/** Takes a worker's `Authorization` header apart; `undefined` when it is not one. */
export function parseWorkerAuthorization(
  header: string | null | undefined,
): WorkerAuthorization | undefined {
  const match = header ? AUTHORIZATION_PATTERN.exec(header) : null;
  if (match === null) return undefined;
  return { nonce: match[1] as string, time: Number(match[2]), mac: match[3] as string };
}

/**
 * The server's proof of an answer: base64url HMAC-SHA256 under the request's key of
 * `sheepdog-server-v2`, method, path, nonce and status joined by line feeds, then a line feed
 * and the answer's body bytes.
 */
export function serverProof(key: MacKey, facts: AnswerFacts, body: string | Uint8Array): string {
  const text = `${SERVER_CONTEXT}\n${facts.method}\n${facts.path}\n${facts.nonce}\n${facts.status}\n`;
  return hmacBase64url(key, text, body);
}

/** Whether `proof` proves an answer, compared in constant time. */
export function proofMatches(
  key: MacKey,
  facts: AnswerFacts,
  body: string | Uint8Array,
  proof: string | null | undefined,
): boolean {
  return typeof proof === "string" && sameText(serverProof(key, facts, body), proof);
}

/** What {@link signWorkerRequest} signs. */
export interface WorkerRequest {
  method: string;
  /** The server's base URL or any URL on it: its authority becomes the `Host`. */
  url: string;
  /** The request target, e.g. `/v2/requests/7/tasks/3`. */
  path: string;
  /** The body of a post. */
  body?: Uint8Array;
  /** @default Date.now() */
  time?: number;
}

/**
 * The headers that authenticate a worker request (`authorization` and, with a body,
 * {@link BODY_HASH_HEADER}), and the nonce to check the answer's proof against. The request
 * MUST be sent with the `Host` of `url` (`new URL(url).host`, as `fetch` and `node:http` send
 * it). For clients written in TypeScript (tests, benchmarks); the Python worker does the same.
 *
 * @example
 * ```ts
 * const key = macKey(hashToken(token));
 * const { headers, nonce } = signWorkerRequest(key, { method: "GET", url, path });
 * const response = await fetch(url + path, { headers });
 * const body = new Uint8Array(await response.arrayBuffer());
 * const genuine = proofMatches(key, { method: "GET", path, nonce, status: response.status },
 *   body, response.headers.get(PROOF_HEADER));
 * ```
 */
export function signWorkerRequest(
  key: MacKey,
  request: WorkerRequest,
): { headers: Record<string, string>; nonce: string } {
  const facts: WorkerRequestFacts = {
    method: request.method,
    host: new URL(request.url).host,
    path: request.path,
    nonce: newNonce(),
    time: request.time ?? Date.now(),
    bodyHash: request.body === undefined ? "" : bodyHash(request.body),
  };
  const headers: Record<string, string> = {
    authorization: `${AUTH_SCHEME} ${facts.nonce}.${facts.time}.${workerMac(key, facts)}`,
  };
  if (request.body !== undefined) headers[BODY_HASH_HEADER] = facts.bodyHash;
  return { headers, nonce: facts.nonce };
}

/**
 * The MAC of a section of a request's staged tasks (see `wire/staging.ts`): base64url
 * HMAC-SHA256 under the request's key of `sheepdog-staged-v2`, the request and the section's
 * label (`common`, or `task <n>`) joined by line feeds, then a line feed and the section.
 */
export function stagedMac(
  key: MacKey,
  request: number,
  label: string,
  section: Uint8Array,
): string {
  return hmacBase64url(key, `${STAGED_CONTEXT}\n${request}\n${label}\n`, section);
}

/**
 * The MAC of a spooled report file (see `wire/staging.ts`): base64url HMAC-SHA256 under the
 * request's key of `sheepdog-spool-v2`, the request, the task and the file's nonce joined by
 * line feeds, then a line feed and the report body.
 */
export function spoolMac(
  key: MacKey,
  facts: { request: number; task: number; nonce: string },
  body: Uint8Array,
): string {
  return hmacBase64url(
    key,
    `${SPOOL_CONTEXT}\n${facts.request}\n${facts.task}\n${facts.nonce}\n`,
    body,
  );
}

/** Whether `mac` is the right one, compared in constant time. */
export function macMatches(expected: string, mac: unknown): boolean {
  return typeof mac === "string" && sameText(expected, mac);
}
