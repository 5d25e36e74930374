import { existsSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { SheepdogError } from "@sheepdog/contracts";
import ssh2 from "ssh2";
import { source } from "./source.js";

/** A private key file Sheepdog may offer. */
export interface Identity {
  path: string;
  /** Where it came from, for messages. */
  origin: "sshKeyfile" | "IdentityFile" | "default";
  /** The key file's contents when it is usable without a passphrase. */
  privateKey?: Buffer;
  /** The public key blob, when known (from the private key, or the `.pub` beside it). */
  publicKey?: Buffer;
  /** True when the key needs a passphrase (Sheepdog never asks for one: use an agent). */
  encrypted: boolean;
}

/** The keys OpenSSH and Sheepdog look for when nothing else is configured, in order. */
export const defaultKeyNames = ["id_ed25519", "id_ecdsa", "id_rsa"] as const;

// ssh2 is CommonJS: Node's ESM loader sees only its default export.
const { utils } = ssh2;

/**
 * Loads a key file. A missing or unreadable explicit key is an `SSH_CONFIG` error; a missing
 * default key is skipped (`undefined`).
 */
export function loadIdentity(path: string, origin: Identity["origin"]): Identity | undefined {
  let data: Buffer;
  try {
    if (statSync(path).isDirectory()) {
      throw new SheepdogError(
        "SSH_CONFIG",
        source,
        `The key file ${path} is a directory. Point sshKeyfile (or IdentityFile) at a private key file.`,
      );
    }
    data = readFileSync(path);
  } catch (error) {
    if (SheepdogError.isInstance(error)) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (origin === "default" && code === "ENOENT") return undefined;
    if (origin === "IdentityFile" && code === "ENOENT") return undefined;
    throw SheepdogError.from(
      error,
      "SSH_CONFIG",
      source,
      code === "ENOENT"
        ? `The key file ${path} (${origin}) does not exist. Check the path, or leave sshKeyfile unset to use your SSH agent and ~/.ssh keys`
        : `Cannot read the key file ${path} (${origin}). Check its permissions`,
    );
  }
  const parsed = utils.parseKey(data);
  if (parsed instanceof Error) {
    if (/no passphrase given/i.test(parsed.message)) {
      const identity: Identity = { path, origin, encrypted: true };
      const publicKey = readPublicKey(`${path}.pub`);
      if (publicKey) identity.publicKey = publicKey;
      return identity;
    }
    if (origin === "default") return undefined;
    throw new SheepdogError(
      "SSH_CONFIG",
      source,
      `The key file ${path} (${origin}) is not a private key Sheepdog can read (${parsed.message}). Use an OpenSSH or PEM private key, such as one made by ssh-keygen -t ed25519.`,
      { cause: parsed },
    );
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key?.isPrivateKey()) {
    if (origin === "default") return undefined;
    throw new SheepdogError(
      "SSH_CONFIG",
      source,
      `The key file ${path} (${origin}) holds a public key. Point it at the private key (without .pub).`,
    );
  }
  return { path, origin, privateKey: data, publicKey: key.getPublicSSH(), encrypted: false };
}

/** The blob of an OpenSSH public key file, or undefined. */
function readPublicKey(path: string): Buffer | undefined {
  try {
    const parsed = utils.parseKey(readFileSync(path));
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    return key && !(key instanceof Error) ? key.getPublicSSH() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The key files to offer, in order: the `sshKeyfile` option, then ~/.ssh/config `IdentityFile`s,
 * then ~/.ssh/id_ed25519, id_ecdsa, id_rsa. Duplicates are dropped.
 */
export function collectIdentities(
  sshKeyfile: string | undefined,
  identityFiles: readonly string[],
  home = homedir(),
): Identity[] {
  const seen = new Set<string>();
  const identities: Identity[] = [];
  const add = (path: string, origin: Identity["origin"]): void => {
    if (seen.has(path)) return;
    seen.add(path);
    const identity = loadIdentity(path, origin);
    if (identity) identities.push(identity);
  };
  if (sshKeyfile !== undefined) add(sshKeyfile, "sshKeyfile");
  for (const file of identityFiles) add(file, "IdentityFile");
  for (const name of defaultKeyNames) add(join(home, ".ssh", name), "default");
  return identities;
}

/** The SSH agent's socket from `SSH_AUTH_SOCK`, when it names an existing socket. */
export function agentSocket(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const sock = env.SSH_AUTH_SOCK;
  if (!sock) return undefined;
  return existsSync(sock) ? sock : undefined;
}
