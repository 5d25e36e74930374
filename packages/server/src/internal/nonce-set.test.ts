import { newNonce } from "@sheepdog/contracts";
import { describe, expect, it } from "vitest";
import { NonceSet } from "./nonce-set.js";

describe("NonceSet", () => {
  it("takes each nonce once, through many growths, as a Set of the strings does", () => {
    const nonces = new NonceSet();
    const strings = new Set<string>();
    const all = Array.from({ length: 50_000 }, () => newNonce());
    for (const nonce of all) expect(nonces.add(nonce)).toBe(true);
    for (const nonce of all) strings.add(nonce);
    for (const nonce of all.slice(0, 1000)) expect(nonces.add(nonce)).toBe(false);
    expect(nonces.size).toBe(strings.size);
  });

  it("tells apart nonces that differ in any one character, the last included", () => {
    const nonces = new NonceSet();
    const base = "AAAAAAAAAAAAAAAAAAAAAA";
    expect(nonces.add(base)).toBe(true);
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let added = 1;
    for (let at = 0; at < base.length; at++) {
      for (const char of alphabet.slice(1)) {
        const nonce = `${base.slice(0, at)}${char}${base.slice(at + 1)}`;
        expect(nonces.add(nonce)).toBe(true);
        added += 1;
      }
    }
    expect(nonces.size).toBe(added);
    expect(nonces.add(base)).toBe(false);
    expect(nonces.add("AAAAAAAAAAAAAAAAAAAAA_")).toBe(false);
  });

  it("refuses what is not a nonce instead of keeping part of it", () => {
    const nonces = new NonceSet();
    for (const bad of ["", "short", `${"A".repeat(21)}=`, `${"A".repeat(21)}é`, "A".repeat(23)]) {
      expect(() => nonces.add(bad)).toThrow(/22 base64url characters/);
    }
    expect(nonces.size).toBe(0);
  });
});
