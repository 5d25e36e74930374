import { describe, expect, it } from "vitest";
import { hashToken, newToken, tokenMatches } from "./token.js";

describe("tokens", () => {
  it("are random, and match only their own hash", () => {
    const a = newToken();
    const b = newToken();
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(tokenMatches(a, hashToken(a))).toBe(true);
    expect(tokenMatches(b, hashToken(a))).toBe(false);
    expect(tokenMatches(a, new Uint8Array(3))).toBe(false);
  });
});
