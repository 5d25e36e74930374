import type { RequestId } from "@sheepdog/contracts";
import { tokenMatches } from "@sheepdog/contracts";
import type { RequestCache, RequestSnapshot } from "./request-cache.js";
import { WireError } from "./wire-error.js";

const BEARER_PATTERN = /^bearer +([A-Za-z0-9._~+/=-]{1,512}) *$/i;

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

/**
 * Checks a worker's `Authorization` header against its request; resolves to the request's
 * snapshot, or rejects with a 401 {@link WireError} (or what `storeFailure` makes of a store
 * failure, such as a 404 for an unknown request).
 */
export type Authorise = (
  authorization: string | null,
  request: RequestId,
) => Promise<RequestSnapshot>;

/**
 * The bearer token check of the worker routes: the token is compared in constant time against
 * the request's stored hash, and a token that matched once is remembered for that snapshot, so
 * that later checks need no hashing.
 */
export function bearerAuth(
  cache: RequestCache,
  storeFailure: (error: unknown) => WireError,
): Authorise {
  const knownTokens = new WeakMap<RequestSnapshot, string>();
  return async (authorization, request) => {
    let snapshot: RequestSnapshot;
    try {
      snapshot = await cache.get(request);
    } catch (error) {
      throw storeFailure(error);
    }
    const token = BEARER_PATTERN.exec(authorization ?? "")?.[1];
    const known = knownTokens.get(snapshot);
    if (token !== undefined && known !== undefined && sameToken(token, known)) return snapshot;
    if (token === undefined || !tokenMatches(token, snapshot.tokenHash)) {
      throw new WireError(401, "A valid bearer token for this request is required.", {
        "www-authenticate": 'Bearer realm="sheepdog"',
      });
    }
    knownTokens.set(snapshot, token);
    return snapshot;
  };
}
