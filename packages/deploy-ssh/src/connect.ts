import { homedir, userInfo } from "node:os";
import { join } from "node:path";
import type { Remote } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type { SshClientLike } from "./client-like.js";
import { hopName, openConnection } from "./internal/connection.js";
import { agentSocket } from "./internal/identities.js";
import { resolveHop } from "./internal/resolve.js";
import { expandTilde } from "./internal/ssh-config.js";
import { SshRemote } from "./internal/ssh-remote.js";

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** The host to connect to: a name, an address, or a `Host` alias from ~/.ssh/config. */
  host: string;
  /**
   * The SSH port. A `Port` for this host in ~/.ssh/config wins over it (as in the original
   * Sheepdog).
   * @default 22
   */
  port?: number;
  /**
   * The login user. A `User` for this host in ~/.ssh/config wins over it (as in the original
   * Sheepdog).
   * @default the current local user
   */
  user?: string;
  /**
   * A private key file to try after the SSH agent and before ~/.ssh/config `IdentityFile`s and
   * ~/.ssh/id_ed25519, id_ecdsa, id_rsa. It must have no passphrase: keep keys with a
   * passphrase in the agent (`ssh-add`). Also tried for ProxyJump hosts.
   */
  keyfile?: string;
  /**
   * The known_hosts file to check the host key against, and the only one read.
   * @default ~/.ssh/known_hosts (and known_hosts2, /etc/ssh/ssh_known_hosts), or the config's `UserKnownHostsFile`
   */
  knownHostsPath?: string;
  /**
   * The OpenSSH client config to read.
   * @default ~/.ssh/config
   */
  sshConfigPath?: string;
  /**
   * How long connecting (through any jump hosts, up to a logged-in session) may take.
   * @default the config's `ConnectTimeout`, else 20000
   */
  connectTimeoutMs?: number;
  /**
   * How often to check that an idle connection is alive; after 3 unanswered checks (or the
   * config's `ServerAliveCountMax`) the connection counts as lost. 0 turns this off.
   * @default the config's `ServerAliveInterval`, else 15000
   */
  keepaliveIntervalMs?: number;
  /**
   * How many commands run at once over the connection; more wait their turn. OpenSSH allows
   * 10 sessions per connection (`MaxSessions`), one of them kept for SFTP; if a server allows
   * fewer, Sheepdog lowers this when the server refuses a session.
   * @default 8
   */
  maxConcurrentCommands?: number;
  /**
   * A time limit for every command that does not set `timeoutMs` itself.
   * @default none
   */
  commandTimeoutMs?: number;
  /**
   * An ssh2 `Client` that is already connected and authenticated. Sheepdog then uses it as it
   * is (no ~/.ssh/config, no host key check, no reconnect: those are yours), and `close()`
   * leaves it open for you to end.
   */
  client?: SshClientLike;
  /** Aborting stops connecting and rejects with `ABORTED`. */
  signal?: AbortSignal;
}

const sourceName = "deploy-ssh";

const knownOptions = new Set([
  "host",
  "port",
  "user",
  "keyfile",
  "knownHostsPath",
  "sshConfigPath",
  "connectTimeoutMs",
  "keepaliveIntervalMs",
  "maxConcurrentCommands",
  "commandTimeoutMs",
  "client",
  "signal",
]);

function invalid(message: string): SheepdogError {
  return new SheepdogError("CONFIG_INVALID", sourceName, message);
}

function closestOption(name: string): string | undefined {
  const lower = name.toLowerCase().replace(/[_-]/g, "");
  for (const option of knownOptions) {
    if (option.toLowerCase() === lower) return option;
  }
  const aliases: Record<string, string> = {
    sshport: "port",
    sshuser: "user",
    username: "user",
    sshkeyfile: "keyfile",
    privatekey: "keyfile",
    identityfile: "keyfile",
    knownhosts: "knownHostsPath",
    sshknownhosts: "knownHostsPath",
    hostname: "host",
    timeout: "connectTimeoutMs",
  };
  return aliases[lower];
}

function checkOptions(options: ConnectOptions): void {
  if (typeof options !== "object" || options === null) {
    throw invalid('connect needs an options object, such as connect({ host: "fear" }).');
  }
  for (const key of Object.keys(options)) {
    if (!knownOptions.has(key)) {
      const suggestion = closestOption(key);
      throw invalid(
        `Unknown option "${key}".${suggestion ? ` Did you mean "${suggestion}"?` : ` Known options: ${[...knownOptions].join(", ")}.`}`,
      );
    }
  }
  if (typeof options.host !== "string" || options.host.trim() === "" || /\s/.test(options.host)) {
    throw invalid(
      `host must be a host name or ~/.ssh/config alias, such as "fear"; got ${JSON.stringify(options.host)}.`,
    );
  }
  if (
    options.port !== undefined &&
    !(Number.isInteger(options.port) && options.port >= 1 && options.port <= 65535)
  ) {
    throw invalid(`port must be an integer from 1 to 65535; got ${JSON.stringify(options.port)}.`);
  }
  for (const key of ["user", "keyfile", "knownHostsPath", "sshConfigPath"] as const) {
    const value = options[key];
    if (value !== undefined && (typeof value !== "string" || value === "")) {
      throw invalid(`${key} must be a non-empty string; got ${JSON.stringify(value)}.`);
    }
  }
  for (const key of ["connectTimeoutMs", "commandTimeoutMs"] as const) {
    const value = options[key];
    if (
      value !== undefined &&
      !(typeof value === "number" && Number.isFinite(value) && value > 0)
    ) {
      throw invalid(
        `${key} must be a positive number of milliseconds; got ${JSON.stringify(value)}.`,
      );
    }
  }
  const keepalive = options.keepaliveIntervalMs;
  if (
    keepalive !== undefined &&
    !(typeof keepalive === "number" && Number.isFinite(keepalive) && keepalive >= 0)
  ) {
    throw invalid(
      `keepaliveIntervalMs must be 0 (off) or a positive number of milliseconds; got ${JSON.stringify(keepalive)}.`,
    );
  }
  const max = options.maxConcurrentCommands;
  if (max !== undefined && !(Number.isInteger(max) && max >= 1)) {
    throw invalid(`maxConcurrentCommands must be a positive integer; got ${JSON.stringify(max)}.`);
  }
}

/**
 * Connects to a host over SSH and returns a {@link Remote} on it: one connection, reused for
 * every command and file, reopened on the next call if it is lost.
 *
 * The host key MUST already be in known_hosts (hashed entries and `[host]:port` included):
 * an unknown host is refused with {@link HostKeyUnknownError}, a changed key with
 * {@link HostKeyChangedError}. Authentication uses keys only: the SSH agent
 * (`SSH_AUTH_SOCK`), then `keyfile`, then ~/.ssh/config `IdentityFile`s, then
 * ~/.ssh/id_ed25519, id_ecdsa, id_rsa. ~/.ssh/config supplies `HostName`, `User`, `Port`,
 * `IdentityFile`, `ProxyCommand`, `ProxyJump`, `HostKeyAlias`, `UserKnownHostsFile`,
 * `ConnectTimeout` and `ServerAliveInterval`/`CountMax`.
 *
 * @example
 * ```ts
 * await using remote = await connect({ host: "fear" });
 * const { stdout } = await remote.exec("qstat -u $USER");
 * await remote.upload("job.sh", "#!/bin/sh\necho hi\n", 0o700);
 * ```
 */
export async function connect(options: ConnectOptions): Promise<Remote & AsyncDisposable> {
  checkOptions(options);
  const home = homedir();
  const localUser = userInfo().username;

  if (options.client) {
    const client = options.client;
    const name = `${options.user ?? localUser}@${options.host}:${options.port ?? 22}`;
    return new SshRemote(
      { client, dispose: () => {} },
      {
        name,
        reconnect: undefined,
        maxConcurrentCommands: options.maxConcurrentCommands ?? 8,
        commandTimeoutMs: options.commandTimeoutMs,
      },
    );
  }

  const sshConfigPath = options.sshConfigPath ?? join(home, ".ssh", "config");
  const { hop, tuning } = resolveHop({
    host: options.host,
    user: options.user,
    port: options.port,
    keyfile: options.keyfile === undefined ? undefined : expandTilde(options.keyfile, home),
    knownHostsPath:
      options.knownHostsPath === undefined ? undefined : expandTilde(options.knownHostsPath, home),
    sshConfigPath: expandTilde(sshConfigPath, home),
    agent: agentSocket(),
    home,
    explicitWins: false,
    depth: 0,
  });
  const timeoutMs =
    options.connectTimeoutMs ??
    (tuning.connectTimeoutSeconds ? tuning.connectTimeoutSeconds * 1000 : 20_000);
  const settings = {
    keepaliveIntervalMs:
      options.keepaliveIntervalMs ??
      (tuning.serverAliveIntervalSeconds !== undefined
        ? tuning.serverAliveIntervalSeconds * 1000
        : 15_000),
    keepaliveCountMax: tuning.serverAliveCountMax ?? 3,
  };
  const open = () => openConnection(hop, settings, timeoutMs, options.signal);
  const first = await open();
  return new SshRemote(first, {
    name: hopName(hop),
    reconnect: () => openConnection(hop, settings, timeoutMs),
    maxConcurrentCommands: options.maxConcurrentCommands ?? 8,
    commandTimeoutMs: options.commandTimeoutMs,
  });
}
