import { existsSync } from "node:fs";
import { SheepdogError, shellQuote } from "@sheepdog/contracts";
import { HostKeyChangedError, HostKeyUnknownError } from "../errors.js";
import type { Hop } from "./hop.js";
import {
  blobKeyType,
  fingerprint,
  type HostKnowledge,
  hostKeyAlgorithms,
  keyTypeLabel,
  lookupHost,
  readKnownHosts,
  verifyHostKey,
} from "./known-hosts.js";
import { source } from "./source.js";

/** What known_hosts says about a hop, and the host key types to offer its server. */
export interface HostKeyChecks {
  knowledge: HostKnowledge;
  /**
   * With keys known, only their types, so that the server answers with one that can be
   * checked; with none known, `undefined` (ssh2's defaults, just to learn the key for the
   * error message).
   */
  serverHostKey: string[] | undefined;
}

/** A path for a shell command in a message: `~/...` under the home directory. */
function shellPath(file: string): string {
  const home = process.env.HOME;
  if (home && file.startsWith(`${home}/`)) return `~/${shellQuote(file.slice(home.length + 1))}`;
  return shellQuote(file);
}

/** The known_hosts files for a message: the first (where a fix goes), then any others that exist. */
function displayFiles(files: readonly string[]): string {
  const shown = files.filter((file, i) => i === 0 || existsSync(file));
  return shown.map(shellPath).join(" or ");
}

/** The known_hosts file a key is added to. */
function firstKnownHosts(hop: Pick<Hop, "knownHostsFiles">): string {
  return hop.knownHostsFiles[0] ?? "~/.ssh/known_hosts";
}

/** The command that adds a host's keys to known_hosts. */
export function keyscanCommand(hop: Pick<Hop, "hostName" | "port" | "knownHostsFiles">): string {
  return `ssh-keyscan -p ${hop.port} ${shellQuote(hop.hostName)} >> ${shellPath(firstKnownHosts(hop))}`;
}

/**
 * Reads what known_hosts holds for `hop`. Throws `SSH_CONFIG` when known_hosts cannot be
 * read, or holds keys for the host only of types Sheepdog cannot check.
 */
export function hostKeyChecks(hop: Hop): HostKeyChecks {
  let knowledge: HostKnowledge;
  try {
    knowledge = lookupHost(readKnownHosts(hop.knownHostsFiles), hop.hostKeyName);
  } catch (error) {
    throw SheepdogError.from(
      error,
      "SSH_CONFIG",
      source,
      `Cannot read known_hosts (${hop.knownHostsFiles.join(", ")}). Check its permissions, or set sshKnownHosts`,
    );
  }
  const knownTypes = knowledge.keys.map((entry) => entry.keyType);
  const serverHostKey = knownTypes.length > 0 ? hostKeyAlgorithms(knownTypes) : undefined;
  if (serverHostKey?.length === 0) {
    throw new SheepdogError(
      "SSH_CONFIG",
      source,
      `known_hosts holds keys for ${hop.hostKeyName} only of types Sheepdog cannot check (${[...new Set(knownTypes)].join(", ")}). Add its ed25519, ECDSA or RSA key: "${keyscanCommand(hop)}" after checking the fingerprint.`,
    );
  }
  return { knowledge, serverHostKey };
}

/** The refusal of a host key that known_hosts does not accept (unknown, revoked or changed). */
export function hostKeyRefusal(
  hop: Hop,
  knowledge: HostKnowledge,
  presented: Buffer,
): SheepdogError {
  const verdict = verifyHostKey(knowledge, presented);
  if (verdict.ok) throw new Error("hostKeyRefusal called for an accepted key");
  const keyType = blobKeyType(presented) ?? "unknown";
  const print = fingerprint(presented);
  const label = keyTypeLabel(keyType);
  const sshKnownHosts = firstKnownHosts(hop);
  const where = `${hop.hostName}:${hop.port}`;
  const facts = { host: hop.hostName, port: hop.port, sshKnownHosts, keyType, fingerprint: print };
  if (verdict.reason === "unknown") {
    const command = keyscanCommand(hop);
    return new HostKeyUnknownError(
      { ...facts, keyscanCommand: command },
      `Host key for ${where} is not in ${displayFiles(hop.knownHostsFiles)} (the server presented ${label} key ${print}), so Sheepdog refuses to connect. Run "${command}" after checking the fingerprint with the host's administrator, or set sshKnownHosts.`,
    );
  }
  if (verdict.reason === "revoked") {
    return new HostKeyChangedError(
      { ...facts, knownAt: [`${verdict.entry.file}:${verdict.entry.line}`] },
      `The ${label} host key of ${where} (${print}) is marked @revoked in ${verdict.entry.file}:${verdict.entry.line}, so Sheepdog refuses to connect. Ask the host's administrator for its current key.`,
    );
  }
  const knownAt = verdict.entries.map((entry) => `${entry.file}:${entry.line}`);
  return new HostKeyChangedError(
    { ...facts, knownAt },
    `WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! The ${label} host key of ${where} is now ${print}, which differs from the key in ${knownAt.join(", ")}. Someone could be eavesdropping on you right now (man-in-the-middle attack), or the host key has just been changed. Sheepdog refuses to connect. If the change is expected, remove the old key with "ssh-keygen -R ${shellQuote(hop.hostKeyName)} -f ${shellPath(sshKnownHosts)}" and add the new one after checking its fingerprint.`,
  );
}

/** The refusal of a server that no longer offers a host key of any type known for it. */
export function keyTypesChanged(hop: Hop, knowledge: HostKnowledge): HostKeyChangedError {
  const known = [...new Set(knowledge.keys.map((entry) => keyTypeLabel(entry.keyType)))];
  return new HostKeyChangedError(
    {
      host: hop.hostName,
      port: hop.port,
      sshKnownHosts: firstKnownHosts(hop),
      knownAt: knowledge.keys.map((entry) => `${entry.file}:${entry.line}`),
    },
    `WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! ${hop.hostName}:${hop.port} no longer offers a host key of the type known_hosts holds for it (${known.join(", ")}). Its keys may have been replaced, or someone may be impersonating it. Sheepdog refuses to connect. If the change is expected, remove the old keys with "ssh-keygen -R ${shellQuote(hop.hostKeyName)}" and run "${keyscanCommand(hop)}" after checking the fingerprint.`,
  );
}
