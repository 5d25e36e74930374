import { homedir, userInfo } from "node:os";
import { join } from "node:path";
import { SheepdogError } from "@sheepdog/contracts";
import type { Hop } from "./hop.js";
import { collectIdentities } from "./identities.js";
import { knownHostsName } from "./known-hosts.js";
import { unbracketed } from "./names.js";
import { expandProxyCommand } from "./proxy-command-tokens.js";
import { source } from "./source.js";
import type { HostConfig, TokenValues } from "./ssh-config.js";
import { expandTilde, expandTokens, parseProxyJump, resolveHostConfig } from "./ssh-config.js";

/** What the caller asked for, before ~/.ssh/config. */
export interface HopRequest {
  host: string;
  user?: string | undefined;
  port?: number | undefined;
  /** The `sshKeyfile` option, `~` expanded. */
  sshKeyfile?: string | undefined;
  /** The `sshKnownHosts` option, `~` expanded. */
  sshKnownHosts?: string | undefined;
  /** The ssh_config file to read (the `sshConfig` option, or ~/.ssh/config). */
  sshConfig: string;
  agent: string | undefined;
  home: string;
  /**
   * Whether `user` and `port` win over the config (true for ProxyJump hops, as with OpenSSH's
   * command line) or the config wins (the target, as the original's Paramiko did).
   */
  explicitWins: boolean;
  /** Replaces the config's ProxyJump/ProxyCommand (the hops before this one in a -J list). */
  jumpOverride?: Hop | undefined;
  depth: number;
}

/** Config settings that tune the connection rather than the hop. */
export interface ConnectTuning {
  connectTimeoutSeconds?: number;
  serverAliveIntervalSeconds?: number;
  serverAliveCountMax?: number;
}

/** The default known_hosts files, as OpenSSH reads them. */
export function defaultKnownHosts(home = homedir()): string[] {
  return [
    join(home, ".ssh", "known_hosts"),
    join(home, ".ssh", "known_hosts2"),
    "/etc/ssh/ssh_known_hosts",
    "/etc/ssh/ssh_known_hosts2",
  ];
}

/** Resolves a host through ~/.ssh/config into a hop (and its jump hops), ready to connect. */
export function resolveHop(request: HopRequest): { hop: Hop; tuning: ConnectTuning } {
  if (request.depth > 8) {
    throw new SheepdogError(
      "SSH_CONFIG",
      source,
      `ProxyJump chains through more than 8 hosts to reach ${request.host}; the SSH config probably loops. Check its ProxyJump lines.`,
    );
  }
  const config = resolveHostConfig(request.host, request.sshConfig, {
    home: request.home,
    ...(request.user !== undefined ? { defaultUser: request.user } : {}),
  });
  const hostName = unbracketed(config.hostName ?? request.host);
  const localUser = userInfo().username;
  const user = request.explicitWins
    ? (request.user ?? config.user ?? localUser)
    : (config.user ?? request.user ?? localUser);
  const port = request.explicitWins
    ? (request.port ?? config.port ?? 22)
    : (config.port ?? request.port ?? 22);
  const tokens = { host: hostName, originalHost: request.host, port, user };

  const identityFiles = config.identityFiles.map((file) =>
    expandTokens(expandTilde(file, request.home), tokens, "IdentityFile", request.home),
  );
  const known = knownHostsFiles(request, config, tokens);
  const hop: Hop = {
    alias: request.host,
    hostName,
    port,
    user,
    identities: collectIdentities(request.sshKeyfile, identityFiles, request.home),
    agent: request.agent,
    identitiesOnly: config.identitiesOnly ?? false,
    knownHostsFiles: known,
    hostKeyName: config.hostKeyAlias ?? knownHostsName(hostName, port),
  };

  if (request.jumpOverride) {
    hop.jump = request.jumpOverride;
  } else if (config.proxyJump !== undefined && config.proxyJump.toLowerCase() !== "none") {
    const jump = jumpHops(request, config.proxyJump);
    if (jump) hop.jump = jump;
  } else if (config.proxyCommand !== undefined && config.proxyCommand.toLowerCase() !== "none") {
    hop.proxyCommand = expandProxyCommand(config.proxyCommand, tokens, request.home);
  }
  return { hop, tuning: tuningOf(config) };
}

/**
 * The known_hosts files to check, the first being where a fix goes: `sshKnownHosts` alone,
 * else the config's `UserKnownHostsFile`s and the system files, else OpenSSH's defaults.
 */
function knownHostsFiles(request: HopRequest, config: HostConfig, tokens: TokenValues): string[] {
  if (request.sshKnownHosts) return [request.sshKnownHosts];
  if (!config.userKnownHostsFiles) return defaultKnownHosts(request.home);
  return [
    ...config.userKnownHostsFiles.map((file) =>
      expandTokens(expandTilde(file, request.home), tokens, "UserKnownHostsFile", request.home),
    ),
    "/etc/ssh/ssh_known_hosts",
    "/etc/ssh/ssh_known_hosts2",
  ];
}

/** Resolves a ProxyJump list into hops, each reached through the one before; the last. */
function jumpHops(request: HopRequest, proxyJump: string): Hop | undefined {
  let previous: Hop | undefined;
  for (const spec of parseProxyJump(proxyJump)) {
    previous = resolveHop({
      ...request,
      host: spec.host,
      user: spec.user,
      port: spec.port,
      explicitWins: true,
      jumpOverride: previous,
      depth: request.depth + 1,
    }).hop;
  }
  return previous;
}

function tuningOf(config: HostConfig): ConnectTuning {
  const tuning: ConnectTuning = {};
  if (config.connectTimeoutSeconds !== undefined)
    tuning.connectTimeoutSeconds = config.connectTimeoutSeconds;
  if (config.serverAliveIntervalSeconds !== undefined)
    tuning.serverAliveIntervalSeconds = config.serverAliveIntervalSeconds;
  if (config.serverAliveCountMax !== undefined)
    tuning.serverAliveCountMax = config.serverAliveCountMax;
  return tuning;
}
