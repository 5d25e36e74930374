import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { matchPatternList } from "./patterns.js";

/** One usable line of a known_hosts file. */
export interface KnownHostEntry {
  file: string;
  /** 1-based line number, for messages. */
  line: number;
  marker: "revoked" | "cert-authority" | undefined;
  /** The key type as written: `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, ... */
  keyType: string;
  /** The key blob (base64-decoded). */
  key: Buffer;
  /** The host field: comma-separated patterns, or one `|1|salt|hash`. */
  hosts: string;
}

/**
 * The name a host is known by in known_hosts: `host` on port 22, else `[host]:port`, as
 * OpenSSH writes it.
 */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Parses known_hosts text. Lines it cannot read are skipped, as OpenSSH does. */
export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? "").trim();
    if (line === "" || line.startsWith("#")) continue;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry["marker"];
    if (fields[0]?.startsWith("@")) {
      const name = fields.shift();
      if (name === "@revoked") marker = "revoked";
      else if (name === "@cert-authority") marker = "cert-authority";
      else continue;
    }
    const [hosts, keyType, keyBase64] = fields;
    if (!hosts || !keyType || !keyBase64) continue;
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(keyBase64)) continue;
    const key = Buffer.from(keyBase64, "base64");
    // The blob starts with its own type; a line whose type and blob disagree is damaged.
    if (blobKeyType(key) !== keyType) continue;
    entries.push({ file, line: i + 1, marker, keyType, key, hosts });
  }
  return entries;
}

/** Reads and parses known_hosts files; a missing file holds no entries. */
export function readKnownHosts(files: readonly string[]): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw error;
    }
    entries.push(...parseKnownHosts(text, file));
  }
  return entries;
}

/** Whether an entry's host field names `name` (`host` or `[host]:port`). */
export function entryMatches(entry: KnownHostEntry, name: string): boolean {
  const hosts = entry.hosts;
  if (hosts.startsWith("|1|")) {
    const [, , salt, hash] = hosts.split("|");
    if (!salt || !hash) return false;
    const expected = Buffer.from(hash, "base64");
    const actual = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest();
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  }
  return matchPatternList(name.toLowerCase(), hosts.toLowerCase()) === true;
}

/** The key type written at the start of an SSH public key blob. */
export function blobKeyType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > 64 || blob.length < 4 + length) return undefined;
  return blob.subarray(4, 4 + length).toString("latin1");
}

/** OpenSSH's fingerprint of a key blob: `SHA256:<base64 without padding>`. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** The short name OpenSSH prints for a key type ("ED25519", "ECDSA", "RSA"). */
export function keyTypeLabel(keyType: string): string {
  if (keyType === "ssh-ed25519") return "ED25519";
  if (keyType.startsWith("ecdsa-")) return "ECDSA";
  if (keyType === "ssh-rsa") return "RSA";
  if (keyType === "ssh-dss") return "DSA";
  return keyType;
}

/**
 * The host key algorithms to offer, from the key types known_hosts holds for the host, in
 * OpenSSH's order of preference. Offering only these means the server can only answer with
 * a key we can check (the original's ECDSA-vs-RSA refusal cannot happen).
 */
export function hostKeyAlgorithms(keyTypes: Iterable<string>): string[] {
  const known = new Set(keyTypes);
  const order: [string, string[]][] = [
    ["ssh-ed25519", ["ssh-ed25519"]],
    ["ecdsa-sha2-nistp256", ["ecdsa-sha2-nistp256"]],
    ["ecdsa-sha2-nistp384", ["ecdsa-sha2-nistp384"]],
    ["ecdsa-sha2-nistp521", ["ecdsa-sha2-nistp521"]],
    ["ssh-rsa", ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]],
    ["ssh-dss", ["ssh-dss"]],
  ];
  const algorithms: string[] = [];
  for (const [type, algos] of order) if (known.has(type)) algorithms.push(...algos);
  return algorithms;
}

/** What known_hosts says about a host. */
export interface HostKnowledge {
  /** The name looked up (`host` or `[host]:port`). */
  name: string;
  /** Keys accepted for the host (no marker). */
  keys: KnownHostEntry[];
  /** Keys marked `@revoked` anywhere that name the host. */
  revoked: KnownHostEntry[];
}

/** The entries for one host. `@cert-authority` lines are not used (certificates are not supported). */
export function lookupHost(entries: readonly KnownHostEntry[], name: string): HostKnowledge {
  const keys: KnownHostEntry[] = [];
  const revoked: KnownHostEntry[] = [];
  for (const entry of entries) {
    if (entry.marker === "revoked") {
      // OpenSSH revokes a key wherever it appears, whatever the host field says.
      revoked.push(entry);
    } else if (entry.marker === undefined && entryMatches(entry, name)) {
      keys.push(entry);
    }
  }
  return { name, keys, revoked };
}

/** The outcome of checking a presented host key. */
export type HostKeyVerdict =
  | { ok: true; entry: KnownHostEntry }
  | { ok: false; reason: "unknown" }
  | { ok: false; reason: "revoked"; entry: KnownHostEntry }
  | { ok: false; reason: "changed"; entries: KnownHostEntry[] };

/** Checks the key a server presented against what known_hosts holds for it. */
export function verifyHostKey(knowledge: HostKnowledge, presented: Buffer): HostKeyVerdict {
  const revoked = knowledge.revoked.find((entry) => entry.key.equals(presented));
  if (revoked) return { ok: false, reason: "revoked", entry: revoked };
  const match = knowledge.keys.find((entry) => entry.key.equals(presented));
  if (match) return { ok: true, entry: match };
  if (knowledge.keys.length === 0) return { ok: false, reason: "unknown" };
  const type = blobKeyType(presented);
  const sameType = knowledge.keys.filter((entry) => entry.keyType === type);
  return { ok: false, reason: "changed", entries: sameType.length ? sameType : knowledge.keys };
}
