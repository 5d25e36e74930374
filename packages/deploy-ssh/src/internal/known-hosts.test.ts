import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  entryMatches,
  fingerprint,
  hostKeyAlgorithms,
  knownHostsName,
  lookupHost,
  parseKnownHosts,
  verifyHostKey,
} from "./known-hosts.js";

const dir = mkdtempSync(join(tmpdir(), "sheepdog-known-hosts-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A real public key of each type, made by ssh-keygen. */
function makeKey(type: "ed25519" | "ecdsa" | "rsa", name: string): { line: string; blob: Buffer } {
  const path = join(dir, name);
  execFileSync("ssh-keygen", [
    "-q",
    "-t",
    type,
    ...(type === "rsa" ? ["-b", "2048"] : []),
    "-N",
    "",
    "-f",
    path,
  ]);
  const line = readFileSync(`${path}.pub`, "utf8").trim();
  const [, base64] = line.split(" ");
  return { line: line.split(" ").slice(0, 2).join(" "), blob: Buffer.from(base64 ?? "", "base64") };
}

const ed = makeKey("ed25519", "ed");
const ec = makeKey("ecdsa", "ec");
const rsa = makeKey("rsa", "rsa");
const other = makeKey("ed25519", "other");

describe("known_hosts", () => {
  it("names hosts as OpenSSH writes them", () => {
    expect(knownHostsName("fear", 22)).toBe("fear");
    expect(knownHostsName("127.0.0.1", 2222)).toBe("[127.0.0.1]:2222");
  });

  it("reads plain entries with patterns, markers and comments, skipping damaged lines", () => {
    const text = [
      "# a comment",
      `fear,fear.cs.example ${ed.line}`,
      `[127.0.0.1]:2222 ${ec.line}`,
      `*.cluster.example,!bad.cluster.example ${rsa.line}`,
      `@revoked * ${other.line}`,
      "@cert-authority *.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBEut74pIJElxkJ/xAeTfmTh5LLSpux3jp8VtifKMjvG",
      "broken-line-without-key",
      `mismatch ssh-rsa ${ed.line.split(" ")[1]}`,
      "",
    ].join("\n");
    const entries = parseKnownHosts(text, "kh");
    expect(entries.map((e) => [e.line, e.marker, e.keyType])).toEqual([
      [2, undefined, "ssh-ed25519"],
      [3, undefined, "ecdsa-sha2-nistp256"],
      [4, undefined, "ssh-rsa"],
      [5, "revoked", "ssh-ed25519"],
      [6, "cert-authority", "ssh-ed25519"],
    ]);
    expect(lookupHost(entries, "fear").keys.map((e) => e.line)).toEqual([2]);
    expect(lookupHost(entries, "FEAR.cs.example").keys.map((e) => e.line)).toEqual([2]);
    expect(lookupHost(entries, "[127.0.0.1]:2222").keys.map((e) => e.line)).toEqual([3]);
    expect(lookupHost(entries, "127.0.0.1").keys).toEqual([]);
    expect(lookupHost(entries, "node1.cluster.example").keys.map((e) => e.line)).toEqual([4]);
    expect(lookupHost(entries, "bad.cluster.example").keys).toEqual([]);
    // Certificate authorities are not host keys.
    expect(lookupHost(entries, "x.example").keys).toEqual([]);
  });

  it("matches hashed entries made by ssh-keygen -H, for bare hosts and [host]:port", () => {
    const file = join(dir, "hashed");
    writeFileSync(file, `fear ${ed.line}\n[127.0.0.1]:2222 ${ec.line}\n`);
    execFileSync("ssh-keygen", ["-q", "-H", "-f", file], { stdio: "ignore" });
    const text = readFileSync(file, "utf8");
    expect(text).not.toContain("fear");
    const entries = parseKnownHosts(text, file);
    expect(entries.every((e) => e.hosts.startsWith("|1|"))).toBe(true);
    expect(lookupHost(entries, "fear").keys.map((e) => e.keyType)).toEqual(["ssh-ed25519"]);
    expect(lookupHost(entries, "[127.0.0.1]:2222").keys.map((e) => e.keyType)).toEqual([
      "ecdsa-sha2-nistp256",
    ]);
    expect(lookupHost(entries, "feat").keys).toEqual([]);
    const first = entries[0];
    if (!first) throw new Error("no entry");
    expect(entryMatches({ ...first, hosts: "|1|broken" }, "fear")).toBe(false);
  });

  it("offers only the host key algorithms known for the host, best first", () => {
    expect(hostKeyAlgorithms(["ssh-rsa", "ecdsa-sha2-nistp256"])).toEqual([
      "ecdsa-sha2-nistp256",
      "rsa-sha2-512",
      "rsa-sha2-256",
      "ssh-rsa",
    ]);
    expect(hostKeyAlgorithms(["ssh-ed25519"])).toEqual(["ssh-ed25519"]);
    expect(hostKeyAlgorithms([])).toEqual([]);
  });

  it("judges a presented key: accepted, unknown, changed or revoked", () => {
    const entries = parseKnownHosts(
      `fear ${ed.line}\nfear ${rsa.line}\n@revoked * ${other.line}\n`,
      "kh",
    );
    const fear = lookupHost(entries, "fear");
    expect(verifyHostKey(fear, ed.blob)).toMatchObject({ ok: true });
    expect(verifyHostKey(fear, rsa.blob)).toMatchObject({ ok: true });
    const changed = verifyHostKey(fear, ec.blob);
    expect(changed).toMatchObject({ ok: false, reason: "changed" });
    expect(verifyHostKey(lookupHost(entries, "nobody"), ed.blob)).toEqual({
      ok: false,
      reason: "unknown",
    });
    expect(verifyHostKey(fear, other.blob)).toMatchObject({ ok: false, reason: "revoked" });
  });

  it("prints fingerprints as ssh-keygen -l does", () => {
    const printed = execFileSync("ssh-keygen", ["-l", "-f", join(dir, "ed.pub")], {
      encoding: "utf8",
    });
    expect(printed).toContain(fingerprint(ed.blob));
  });
});
