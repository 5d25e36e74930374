import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** A new request token: 32 random bytes, base64url. */
export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * The SHA-256 of a token, which is what stores keep. It is also the request's key in the wire
 * protocol (HMAC-SHA256, see `wire/auth.ts`), so it is as secret as the token: a store keeps it
 * where only its owner can read it.
 */
export function hashToken(token: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(token, "utf8").digest());
}

/** Whether `token` hashes to `hash`, compared in constant time. */
export function tokenMatches(token: string, hash: Uint8Array): boolean {
  const candidate = hashToken(token);
  return candidate.length === hash.length && timingSafeEqual(candidate, hash);
}
