import { SheepdogError } from "@sheepdog/contracts";
import { source } from "./internal/source.js";

/** Facts shared by both host key refusals. */
export interface HostKeyFacts {
  /** The host name the key was looked up by (after ~/.ssh/config `HostName`). */
  host: string;
  port: number;
  /**
   * The known_hosts file that was checked first, where a key is added: the `sshKnownHosts`
   * option, else the config's `UserKnownHostsFile`, else ~/.ssh/known_hosts.
   */
  sshKnownHosts: string;
  /** The type of the key the server presented (`ssh-ed25519`, ...), when it presented one. */
  keyType?: string;
  /** Its OpenSSH fingerprint (`SHA256:...`), when it presented one. */
  fingerprint?: string;
}

/** The facts as they go into {@link SheepdogError.detail}: the ones known, nothing undefined. */
function definedFacts(facts: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(facts).filter(([, value]) => value !== undefined));
}

/**
 * A refusal to connect because of the server's host key: {@link HostKeyUnknownError} or
 * {@link HostKeyChangedError}. `HostKeyError.isInstance(e)` is true for both.
 */
export abstract class HostKeyError extends SheepdogError implements HostKeyFacts {
  static override readonly marker: symbol = Symbol.for("sheepdog.error.deploy-ssh.HostKeyError");
  readonly host: string;
  readonly port: number;
  readonly sshKnownHosts: string;
  readonly keyType?: string;
  readonly fingerprint?: string;

  constructor(
    code: "SSH_HOST_KEY_UNKNOWN" | "SSH_HOST_KEY_CHANGED",
    facts: HostKeyFacts,
    message: string,
  ) {
    super(code, source, message, { detail: definedFacts(facts) });
    this.host = facts.host;
    this.port = facts.port;
    this.sshKnownHosts = facts.sshKnownHosts;
    if (facts.keyType !== undefined) this.keyType = facts.keyType;
    if (facts.fingerprint !== undefined) this.fingerprint = facts.fingerprint;
  }
}

/**
 * The server's host key is not in known_hosts, so Sheepdog refused to connect (code
 * `SSH_HOST_KEY_UNKNOWN`). The message holds the `ssh-keyscan` command that adds it.
 */
export class HostKeyUnknownError extends HostKeyError {
  static override readonly marker: symbol = Symbol.for(
    "sheepdog.error.deploy-ssh.HostKeyUnknownError",
  );
  override readonly name = "HostKeyUnknownError";
  /** The shell command that appends the host's keys to known_hosts. */
  readonly keyscanCommand: string;

  constructor(facts: HostKeyFacts & { keyscanCommand: string }, message: string) {
    super("SSH_HOST_KEY_UNKNOWN", facts, message);
    this.keyscanCommand = facts.keyscanCommand;
  }
}

/**
 * The server presented a host key that differs from the one known_hosts holds for it (or one
 * marked `@revoked`), so Sheepdog refused to connect (code `SSH_HOST_KEY_CHANGED`).
 */
export class HostKeyChangedError extends HostKeyError {
  static override readonly marker: symbol = Symbol.for(
    "sheepdog.error.deploy-ssh.HostKeyChangedError",
  );
  override readonly name = "HostKeyChangedError";
  /** Where the key known for the host is written, as `file:line`. */
  readonly knownAt: string[];

  constructor(facts: HostKeyFacts & { knownAt: string[] }, message: string) {
    super("SSH_HOST_KEY_CHANGED", facts, message);
    this.knownAt = facts.knownAt;
  }
}
