import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { dirname } from "node:path";
import { hashToken, macKey, newToken, serverProof, workerMac } from "@sheepdog/contracts";
import { describe, expect, it } from "vitest";
import { PYTHON } from "./__fixtures__/python.js";
import { workerPath } from "./worker-source.js";

/** The worker's own signature and proof functions, run by Python on each case. */
function pythonSigns(cases: unknown[]): { key: string; mac: string; proof: string }[] {
  const script = [
    "import base64, hashlib, json, sys",
    "sys.path.insert(0, sys.argv[1])",
    "import sheepdog_worker as w",
    "out = []",
    "for c in json.load(sys.stdin):",
    "    key = hashlib.sha256(c['token'].encode()).digest()",
    "    body = base64.b64decode(c['body'])",
    "    out.append({'key': key.hex(),",
    "      'mac': w.worker_mac(key, c['method'], c['host'], c['path'], c['nonce'], c['time'], c['bodyHash']),",
    "      'proof': w.server_proof(key, c['method'], c['path'], c['nonce'], c['status'], body)})",
    "print(json.dumps(out))",
  ].join("\n");
  const out = execFileSync(PYTHON, ["-c", script, dirname(workerPath)], {
    input: JSON.stringify(cases),
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" },
  });
  return JSON.parse(out.toString());
}

describe("the worker's authentication, against @sheepdog/contracts", () => {
  it("derives the same key and makes the same MACs and proofs as wire/auth.ts", () => {
    const cases = Array.from({ length: 20 }, (_, i) => {
      const body = randomBytes(i * 37);
      return {
        token: newToken(),
        method: i % 2 === 0 ? "GET" : "POST",
        host: i % 3 === 0 ? "head.example:8123" : `[::1]:${40000 + i}`,
        path: `/v2/requests/${i + 1}/tasks/${i * 7 + 1}${i % 2 ? "/reports" : ""}`,
        nonce: randomBytes(16).toString("base64url"),
        time: Date.now() + i,
        bodyHash: i % 2 === 0 ? "" : randomBytes(32).toString("base64url"),
        status: [200, 401, 404, 503][i % 4] as number,
        body: body.toString("base64"),
      };
    });
    const seen = pythonSigns(cases);
    for (const [i, c] of cases.entries()) {
      const key = hashToken(c.token);
      const facts = { ...c };
      expect(seen[i]?.key).toBe(Buffer.from(key).toString("hex"));
      expect(seen[i]?.mac).toBe(workerMac(macKey(key), facts));
      expect(seen[i]?.proof).toBe(
        serverProof(macKey(key), c, new Uint8Array(Buffer.from(c.body, "base64"))),
      );
    }
  });
});
