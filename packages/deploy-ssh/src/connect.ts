import { homedir, userInfo } from "node:os";
import { join } from "node:path";
import type { Remote } from "@sheepdog/contracts";
import type { SshClientLike } from "./client-like.js";
import type { ConnectOptions } from "./connect-options.js";
import { openConnection } from "./internal/connection.js";
import { hopName } from "./internal/hop.js";
import { agentSocket } from "./internal/identities.js";
import { checkOptions } from "./internal/options.js";
import { resolveHop } from "./internal/resolve.js";
import { expandTilde } from "./internal/ssh-config.js";
import { SshRemote } from "./internal/ssh-remote.js";

export type { ConnectOptions } from "./connect-options.js";

/** A Remote on a client the caller connected (and will end). */
function onGivenClient(options: ConnectOptions, client: SshClientLike): SshRemote {
  const name = `${options.sshUser ?? userInfo().username}@${options.host}:${options.sshPort ?? 22}`;
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

/** A Remote on a connection opened through ~/.ssh/config, reopened when it is lost. */
async function onOwnConnection(options: ConnectOptions): Promise<SshRemote> {
  const home = homedir();
  const expand = (path: string | undefined): string | undefined =>
    path === undefined ? undefined : expandTilde(path, home);
  const { hop, tuning } = resolveHop({
    host: options.host,
    user: options.sshUser,
    port: options.sshPort,
    sshKeyfile: expand(options.sshKeyfile),
    sshKnownHosts: expand(options.sshKnownHosts),
    sshConfig: expandTilde(options.sshConfig ?? join(home, ".ssh", "config"), home),
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
  const first = await openConnection(hop, settings, timeoutMs, options.signal);
  return new SshRemote(first, {
    name: hopName(hop),
    reconnect: () => openConnection(hop, settings, timeoutMs),
    maxConcurrentCommands: options.maxConcurrentCommands ?? 8,
    commandTimeoutMs: options.commandTimeoutMs,
  });
}

/**
 * Connects to a host over SSH and returns a {@link Remote} on it: one connection, reused for
 * every command and file, reopened on the next call if it is lost.
 *
 * The host key MUST already be in known_hosts (hashed entries and `[host]:port` included):
 * an unknown host is refused with {@link HostKeyUnknownError}, a changed key with
 * {@link HostKeyChangedError}. Authentication uses keys only: the SSH agent
 * (`SSH_AUTH_SOCK`), then `sshKeyfile`, then ~/.ssh/config `IdentityFile`s, then
 * ~/.ssh/id_ed25519, id_ecdsa, id_rsa. ~/.ssh/config supplies `HostName`, `User`, `Port`,
 * `IdentityFile`, `ProxyCommand`, `ProxyJump`, `HostKeyAlias`, `UserKnownHostsFile`,
 * `ConnectTimeout` and `ServerAliveInterval`/`CountMax`.
 *
 * Host and user names (`host`, `sshUser`, the config's `HostName`, `User` and `ProxyJump`
 * hosts) MUST be names or addresses without shell characters, whitespace or a leading `-`;
 * others are refused with `CONFIG_INVALID` before any command runs. The `%` tokens of a
 * `ProxyCommand` are quoted for the shell, so that no value becomes shell syntax.
 *
 * @example
 * ```ts
 * await using remote = await connect({ host: "fear", sshUser: "me" });
 * const { stdout } = await remote.exec("qstat -u $USER");
 * await remote.upload("job.sh", "#!/bin/sh\necho hi\n", 0o700);
 * ```
 */
export async function connect(options: ConnectOptions): Promise<Remote & AsyncDisposable> {
  checkOptions(options);
  return options.client ? onGivenClient(options, options.client) : onOwnConnection(options);
}
