import { SheepdogError } from "@sheepdog/contracts";

/** Facts shared by both host key refusals. */
export interface HostKeyFacts {
  /** The host name the key was looked up by (after ~/.ssh/config `HostName`). */
  host: string;
  port: number;
  /** The known_hosts file(s) that were checked, the first being where to add keys. */
  knownHostsPath: string;
  /** The type of the key the server presented (`ssh-ed25519`, ...), when it presented one. */
  keyType?: string;
  /** Its OpenSSH fingerprint (`SHA256:...`), when it presented one. */
  fingerprint?: string;
}

/**
 * The server's host key is not in known_hosts, so Sheepdog refused to connect (code
 * `SSH_HOST_KEY_UNKNOWN`). The message holds the `ssh-keyscan` command that adds it.
 */
export class HostKeyUnknownError extends SheepdogError implements HostKeyFacts {
  override readonly name = "HostKeyUnknownError";
  readonly host: string;
  readonly port: number;
  readonly knownHostsPath: string;
  readonly keyType?: string;
  readonly fingerprint?: string;
  /** The shell command that appends the host's keys to known_hosts. */
  readonly keyscanCommand: string;

  constructor(facts: HostKeyFacts & { keyscanCommand: string }, message: string) {
    super("SSH_HOST_KEY_UNKNOWN", "deploy-ssh", message);
    this.host = facts.host;
    this.port = facts.port;
    this.knownHostsPath = facts.knownHostsPath;
    if (facts.keyType !== undefined) this.keyType = facts.keyType;
    if (facts.fingerprint !== undefined) this.fingerprint = facts.fingerprint;
    this.keyscanCommand = facts.keyscanCommand;
  }
}

/**
 * The server presented a host key that differs from the one known_hosts holds for it (or one
 * marked `@revoked`), so Sheepdog refused to connect (code `SSH_HOST_KEY_CHANGED`).
 */
export class HostKeyChangedError extends SheepdogError implements HostKeyFacts {
  override readonly name = "HostKeyChangedError";
  readonly host: string;
  readonly port: number;
  readonly knownHostsPath: string;
  readonly keyType?: string;
  readonly fingerprint?: string;
  /** Where the key known for the host is written, as `file:line`. */
  readonly knownAt: string[];

  constructor(facts: HostKeyFacts & { knownAt: string[] }, message: string) {
    super("SSH_HOST_KEY_CHANGED", "deploy-ssh", message);
    this.host = facts.host;
    this.port = facts.port;
    this.knownHostsPath = facts.knownHostsPath;
    if (facts.keyType !== undefined) this.keyType = facts.keyType;
    if (facts.fingerprint !== undefined) this.fingerprint = facts.fingerprint;
    this.knownAt = facts.knownAt;
  }
}
