import { createHmac, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { hashToken } from "../token.js";
import type { WorkerRequestFacts } from "./auth.js";
import {
  BODY_HASH_HEADER,
  bodyHash,
  macKey,
  newNonce,
  parseWorkerAuthorization,
  proofMatches,
  serverProof,
  signWorkerRequest,
  workerMac,
  workerMacMatches,
} from "./auth.js";

const key = hashToken("the-token");
const facts: WorkerRequestFacts = {
  method: "GET",
  host: "head.example:8123",
  path: "/v2/requests/7/tasks/3",
  nonce: "AAAAAAAAAAAAAAAAAAAAAA",
  time: 1_700_000_000_000,
  bodyHash: "",
};

const hmac = (k: Uint8Array, ...parts: (string | Uint8Array)[]) => {
  const mac = createHmac("sha256", k);
  for (const part of parts) mac.update(part);
  return mac.digest("base64url");
};

describe("wire authentication", () => {
  it("signs the documented text of a worker request: HMAC-SHA256 under the token's hash", () => {
    const text =
      "sheepdog-worker-v2\nGET\nhead.example:8123\n/v2/requests/7/tasks/3\nAAAAAAAAAAAAAAAAAAAAAA\n1700000000000\n";
    expect(workerMac(macKey(key), facts)).toBe(hmac(key, text));
    expect(workerMacMatches(macKey(key), facts, hmac(key, text))).toBe(true);
    for (const change of [
      { method: "POST" },
      { host: "head.example:8124" },
      { path: "/v2/requests/7/tasks/4" },
      { nonce: "AAAAAAAAAAAAAAAAAAAAAB" },
      { time: facts.time + 1 },
      { bodyHash: bodyHash(new Uint8Array([1])) },
    ]) {
      expect(workerMacMatches(macKey(key), { ...facts, ...change }, hmac(key, text))).toBe(false);
    }
    expect(workerMacMatches(macKey(hashToken("other")), facts, hmac(key, text))).toBe(false);
  });

  it("proves the documented text of an answer, body included", () => {
    const body = new Uint8Array([0, 1, 2, 255]);
    const answer = { method: "GET", path: facts.path, nonce: facts.nonce, status: 200 };
    const expected = hmac(
      key,
      "sheepdog-server-v2\nGET\n/v2/requests/7/tasks/3\nAAAAAAAAAAAAAAAAAAAAAA\n200\n",
      body,
    );
    expect(serverProof(macKey(key), answer, body)).toBe(expected);
    expect(proofMatches(macKey(key), answer, body, expected)).toBe(true);
    expect(proofMatches(macKey(key), { ...answer, status: 404 }, body, expected)).toBe(false);
    expect(proofMatches(macKey(key), answer, new Uint8Array([0, 1, 2]), expected)).toBe(false);
    expect(proofMatches(macKey(key), answer, body, null)).toBe(false);
    expect(serverProof(macKey(key), answer, '{"a":"ü"}')).toBe(
      hmac(
        key,
        "sheepdog-server-v2\nGET\n/v2/requests/7/tasks/3\nAAAAAAAAAAAAAAAAAAAAAA\n200\n",
        '{"a":"ü"}',
      ),
    );
  });

  it("agrees with createHmac for every length, short bodies and long ones", () => {
    const k = macKey(key);
    for (const length of [0, 1, 55, 56, 63, 64, 65, 1000, 16 * 1024 - 200, 16 * 1024, 100_000]) {
      const body = randomBytes(length);
      const answer = { method: "POST", path: "/x", nonce: newNonce(), status: 200 };
      const text = `sheepdog-server-v2\nPOST\n/x\n${answer.nonce}\n200\n`;
      expect(serverProof(k, answer, body)).toBe(hmac(key, text, body));
    }
    // Keys longer than a block are hashed first, as RFC 2104 says.
    const long = randomBytes(100);
    expect(workerMac(macKey(long), facts)).toBe(
      createHmac("sha256", long)
        .update(
          `sheepdog-worker-v2\nGET\nhead.example:8123\n${facts.path}\n${facts.nonce}\n${facts.time}\n`,
        )
        .digest("base64url"),
    );
  });

  it("takes an Authorization header apart, and nothing else", () => {
    const mac = "B".repeat(43);
    expect(parseWorkerAuthorization(`Sheepdog ${facts.nonce}.123.${mac}`)).toEqual({
      nonce: facts.nonce,
      time: 123,
      mac,
    });
    expect(parseWorkerAuthorization(`sheepdog ${facts.nonce}.123.${mac}`)?.time).toBe(123);
    for (const header of [
      null,
      "",
      `Bearer ${facts.nonce}.123.${mac}`,
      `Sheepdog ${facts.nonce}.0123.${mac}`,
      `Sheepdog ${facts.nonce}.123.${mac}x`,
      `Sheepdog ${facts.nonce}x.123.${mac}`,
      `Sheepdog ${facts.nonce}.1234567890123456.${mac}`,
      `Sheepdog  ${facts.nonce}.123.${mac}`,
      `Sheepdog ${facts.nonce}.123.${mac} `,
    ]) {
      expect(parseWorkerAuthorization(header)).toBeUndefined();
    }
  });

  it("makes the headers of a signed request, with a fresh nonce each time", () => {
    const k = macKey(key);
    const body = new Uint8Array([1, 2, 3]);
    const url = "http://127.0.0.1:4000";
    const signed = signWorkerRequest(k, { method: "POST", url, path: "/p", body, time: 5 });
    const parsed = parseWorkerAuthorization(signed.headers.authorization);
    expect(parsed).toMatchObject({ nonce: signed.nonce, time: 5 });
    expect(signed.headers[BODY_HASH_HEADER]).toBe(bodyHash(body));
    const signedFacts = {
      method: "POST",
      host: "127.0.0.1:4000",
      path: "/p",
      nonce: signed.nonce,
      time: 5,
      bodyHash: bodyHash(body),
    };
    expect(workerMacMatches(k, signedFacts, parsed?.mac ?? "")).toBe(true);
    const again = signWorkerRequest(k, { method: "GET", url, path: "/p" });
    expect(again.nonce).not.toBe(signed.nonce);
    expect(again.nonce).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(again.headers[BODY_HASH_HEADER]).toBeUndefined();
  });
});
