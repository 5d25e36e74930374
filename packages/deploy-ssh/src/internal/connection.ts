import { existsSync } from "node:fs";
import type { Duplex } from "node:stream";
import { SheepdogError } from "@sheepdog/contracts";
import ssh2, { type Client } from "ssh2";
import { HostKeyChangedError, HostKeyUnknownError } from "../errors.js";
import { FilteredAgent } from "./filtered-agent.js";
import type { Identity } from "./identities.js";
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
import { ProxyCommandStream } from "./proxy-command.js";
import { quoteShell } from "./quote.js";

// ssh2 is CommonJS: Node's ESM loader sees only its default export.
const { Client: SshClient } = ssh2;

const sourceName = "deploy-ssh";

/** Everything needed to reach one SSH server, after ~/.ssh/config. */
export interface Hop {
  /** The host as given (a config alias or a name). */
  alias: string;
  /** The name or address to connect to (config `HostName`, else `alias`). */
  hostName: string;
  port: number;
  user: string;
  /** Key files to offer after the agent. */
  identities: Identity[];
  /** The agent's socket, when there is one. */
  agent: string | undefined;
  /** Offer only the agent's keys that match `identities` (`IdentitiesOnly yes`). */
  identitiesOnly: boolean;
  /** The expanded ProxyCommand, when the host is reached through one. */
  proxyCommand?: string;
  /** The hop this one is reached through (ProxyJump), when there is one. */
  jump?: Hop;
  /** known_hosts files to check; the first is where the fix goes. */
  knownHostsFiles: string[];
  /** The name looked up in known_hosts (`host`, `[host]:port`, or the HostKeyAlias). */
  hostKeyName: string;
}

/** Settings for the whole chain of hops. */
export interface ConnectSettings {
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
}

/** An open connection and everything it holds (jump connections, proxy commands). */
export interface Connection {
  client: Client;
  /** Ends the connection and everything under it. Idempotent. */
  dispose(): void;
}

/** `user@host:port` for messages. */
export function hopName(hop: Pick<Hop, "user" | "hostName" | "port">): string {
  return `${hop.user}@${hop.hostName}:${hop.port}`;
}

/** The command that adds a host's keys to known_hosts. */
export function keyscanCommand(hop: Pick<Hop, "hostName" | "port" | "knownHostsFiles">): string {
  const file = hop.knownHostsFiles[0] ?? "~/.ssh/known_hosts";
  const target = shellPath(file);
  return `ssh-keyscan -p ${hop.port} ${quoteShell(hop.hostName)} >> ${target}`;
}

function shellPath(file: string): string {
  const home = process.env.HOME;
  if (home && file.startsWith(`${home}/`)) return `~/${quoteShell(file.slice(home.length + 1))}`;
  return quoteShell(file);
}

/** The known_hosts files for a message: the first (where a fix goes), then any others that exist. */
function displayFiles(files: readonly string[]): string {
  const shown = files.filter((file, i) => i === 0 || existsSync(file));
  return shown.map(shellPath).join(" or ");
}

/** Tracks what a connection attempt has opened, to tear it all down on failure. */
class Resources {
  private readonly items: (() => void)[] = [];
  add(release: () => void): void {
    this.items.push(release);
  }
  releaseAll(): void {
    for (const release of this.items.splice(0).reverse()) {
      try {
        release();
      } catch {
        // Tearing down: nothing more to do with a failure here.
      }
    }
  }
}

/**
 * Opens a connection to `hop` (through its jump hosts or proxy command), checking its host
 * key against known_hosts and authenticating with the agent and key files. Rejects with a
 * `SheepdogError`; on failure or timeout nothing is left open.
 */
export function openConnection(
  hop: Hop,
  settings: ConnectSettings,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Connection> {
  const resources = new Resources();
  return new Promise<Connection>((resolve, reject) => {
    let settled = false;
    const finish = (error: SheepdogError | undefined, connection?: Connection): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (error || !connection) {
        resources.releaseAll();
        reject(error);
      } else {
        resolve(connection);
      }
    };
    const timer = setTimeout(() => {
      finish(
        new SheepdogError(
          "TIMEOUT",
          sourceName,
          `Connecting to ${hopName(hop)} took longer than ${timeoutMs} ms${hop.jump ? ` (through ${hopName(hop.jump)})` : ""}. Check that the host is up and reachable, or raise connectTimeoutMs.`,
        ),
      );
    }, timeoutMs);
    const onAbort = (): void =>
      finish(
        new SheepdogError("ABORTED", sourceName, `Connecting to ${hopName(hop)} was aborted.`),
      );
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener("abort", onAbort, { once: true });

    openHop(hop, settings, resources).then(
      (client) => finish(undefined, { client, dispose: () => resources.releaseAll() }),
      (error: unknown) =>
        finish(
          SheepdogError.from(error, "SSH_CONNECT", sourceName, `Cannot connect to ${hopName(hop)}`),
        ),
    );
  });
}

async function openHop(hop: Hop, settings: ConnectSettings, resources: Resources): Promise<Client> {
  let sock: Duplex | undefined;
  let proxy: ProxyCommandStream | undefined;
  if (hop.jump) {
    const jumpClient = await openHop(hop.jump, settings, resources);
    sock = await forwardOut(jumpClient, hop, hop.jump);
    const stream = sock;
    resources.add(() => stream.destroy());
  } else if (hop.proxyCommand !== undefined) {
    try {
      proxy = new ProxyCommandStream(hop.proxyCommand);
    } catch (error) {
      throw SheepdogError.from(
        error,
        "SSH_CONNECT",
        sourceName,
        `Cannot start the ProxyCommand for ${hop.alias}. Check the ProxyCommand line in your SSH config`,
      );
    }
    const stream = proxy;
    resources.add(() => stream.destroy());
    sock = proxy;
  }
  return handshake(hop, settings, resources, sock, proxy);
}

function forwardOut(jump: Client, hop: Hop, via: Hop): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    try {
      jump.forwardOut("127.0.0.1", 0, hop.hostName, hop.port, (error, stream) => {
        if (error) {
          reject(
            SheepdogError.from(
              error,
              "SSH_CONNECT",
              sourceName,
              `The jump host ${hopName(via)} cannot reach ${hop.hostName}:${hop.port}. Check the host and port (HostName and Port in your SSH config), and that the jump host allows TCP forwarding`,
            ),
          );
        } else {
          resolve(stream);
        }
      });
    } catch (error) {
      reject(
        SheepdogError.from(
          error,
          "SSH_CONNECT",
          sourceName,
          `Cannot forward through ${hopName(via)}`,
        ),
      );
    }
  });
}

interface AuthMethod {
  label: string;
  auth:
    | { type: "agent"; username: string; agent: string | FilteredAgent }
    | { type: "publickey"; username: string; key: Buffer };
}

function authMethods(hop: Hop): AuthMethod[] {
  const methods: AuthMethod[] = [];
  if (hop.agent) {
    if (hop.identitiesOnly) {
      const allowed = hop.identities.flatMap((identity) =>
        identity.publicKey ? [identity.publicKey] : [],
      );
      methods.push({
        label: `the SSH agent's keys that match them (SSH_AUTH_SOCK=${hop.agent}, IdentitiesOnly)`,
        auth: { type: "agent", username: hop.user, agent: new FilteredAgent(hop.agent, allowed) },
      });
    } else {
      methods.push({
        label: `the SSH agent (SSH_AUTH_SOCK=${hop.agent})`,
        auth: { type: "agent", username: hop.user, agent: hop.agent },
      });
    }
  }
  for (const identity of hop.identities) {
    if (identity.privateKey) {
      methods.push({
        label: identity.path,
        auth: { type: "publickey", username: hop.user, key: identity.privateKey },
      });
    }
  }
  return methods;
}

function passphraseAdvice(hop: Hop): string {
  const encrypted = hop.identities.filter((identity) => identity.encrypted);
  if (encrypted.length === 0) return "";
  const paths = encrypted.map((identity) => identity.path);
  const agentState = hop.agent
    ? "and the SSH agent does not hold it"
    : "and no SSH agent is running (SSH_AUTH_SOCK is not set, or names no socket)";
  const start = hop.agent ? "" : 'start an agent (eval "$(ssh-agent)") and ';
  return ` The key ${paths.join(", ")} is protected by a passphrase, which Sheepdog never asks for, ${agentState}: ${start}add the key to the agent with "ssh-add ${quoteShell(paths[0] ?? "")}".`;
}

/** Refuses before connecting when there is nothing to authenticate with. */
function noMethodsError(hop: Hop): SheepdogError {
  const advice = passphraseAdvice(hop);
  if (advice) {
    return new SheepdogError("SSH_AUTH", sourceName, `No usable key for ${hopName(hop)}.${advice}`);
  }
  return new SheepdogError(
    "SSH_AUTH",
    sourceName,
    `No SSH key for ${hopName(hop)}: no SSH agent (SSH_AUTH_SOCK), no keyfile, no IdentityFile, and none of ~/.ssh/id_ed25519, id_ecdsa, id_rsa. Create a key with "ssh-keygen -t ed25519" and install it with "ssh-copy-id -p ${hop.port} ${hop.user}@${hop.hostName}", or pass keyfile.`,
  );
}

function hostKeyError(hop: Hop, knowledge: HostKnowledge, presented: Buffer): SheepdogError {
  const verdict = verifyHostKey(knowledge, presented);
  const keyType = blobKeyType(presented) ?? "unknown";
  const print = fingerprint(presented);
  const label = keyTypeLabel(keyType);
  const knownHostsPath = hop.knownHostsFiles[0] ?? "~/.ssh/known_hosts";
  const where = `${hop.hostName}:${hop.port}`;
  const facts = { host: hop.hostName, port: hop.port, knownHostsPath, keyType, fingerprint: print };
  if (verdict.ok) throw new Error("hostKeyError called for an accepted key");
  if (verdict.reason === "unknown") {
    const command = keyscanCommand(hop);
    return new HostKeyUnknownError(
      { ...facts, keyscanCommand: command },
      `Host key for ${where} is not in ${displayFiles(hop.knownHostsFiles)} (the server presented ${label} key ${print}), so Sheepdog refuses to connect. Run "${command}" after checking the fingerprint with the host's administrator, or pass knownHostsPath.`,
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
    `WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! The ${label} host key of ${where} is now ${print}, which differs from the key in ${knownAt.join(", ")}. Someone could be eavesdropping on you right now (man-in-the-middle attack), or the host key has just been changed. Sheepdog refuses to connect. If the change is expected, remove the old key with "ssh-keygen -R ${quoteShell(hop.hostKeyName)} -f ${shellPath(knownHostsPath)}" and add the new one after checking its fingerprint.`,
  );
}

function handshake(
  hop: Hop,
  settings: ConnectSettings,
  resources: Resources,
  sock: Duplex | undefined,
  proxy: ProxyCommandStream | undefined,
): Promise<Client> {
  return new Promise<Client>((resolve, reject) => {
    const methods = authMethods(hop);
    if (methods.length === 0) {
      reject(noMethodsError(hop));
      return;
    }

    let knowledge: HostKnowledge;
    try {
      knowledge = lookupHost(readKnownHosts(hop.knownHostsFiles), hop.hostKeyName);
    } catch (error) {
      reject(
        SheepdogError.from(
          error,
          "SSH_CONFIG",
          sourceName,
          `Cannot read known_hosts (${hop.knownHostsFiles.join(", ")}). Check its permissions, or pass knownHostsPath`,
        ),
      );
      return;
    }
    const knownTypes = knowledge.keys.map((entry) => entry.keyType);
    // With keys known, offer only their types, so the server answers with one we can check.
    // With none known, offer the defaults just to learn the key for the error message.
    const serverHostKey = knownTypes.length > 0 ? hostKeyAlgorithms(knownTypes) : undefined;
    if (serverHostKey?.length === 0) {
      reject(
        new SheepdogError(
          "SSH_CONFIG",
          sourceName,
          `known_hosts holds keys for ${hop.hostKeyName} only of types Sheepdog cannot check (${[...new Set(knownTypes)].join(", ")}). Add its ed25519, ECDSA or RSA key: "${keyscanCommand(hop)}" after checking the fingerprint.`,
        ),
      );
      return;
    }

    const client = new SshClient();
    resources.add(() => client.end());
    let hostKeyRefusal: SheepdogError | undefined;
    let agentFailure: string | undefined;
    let serverMethods: string[] | undefined;
    const tried: string[] = [];
    let settled = false;

    const fail = (error: SheepdogError): void => {
      if (settled) return;
      settled = true;
      reject(error);
    };
    const proxyNote = (): string =>
      proxy?.exit !== undefined
        ? ` The ProxyCommand exited with ${proxy.exit.signal ? `signal ${proxy.exit.signal}` : `code ${proxy.exit.code}`}${proxy.stderrTail ? `: ${proxy.stderrTail.trim()}` : ""}.`
        : "";
    /** Fails once the ProxyCommand (if any) has exited, so that its message can be told. */
    const failSoon = (make: () => SheepdogError): void => {
      if (settled) return;
      if (!proxy || proxy.exit !== undefined) {
        fail(make());
        return;
      }
      const timer = setTimeout(() => fail(make()), 1000);
      proxy.once("proxy-exit", () => {
        clearTimeout(timer);
        fail(make());
      });
    };

    client.on("ready", () => {
      if (settled) return;
      settled = true;
      resolve(client);
    });
    client.on("error", (error: Error & { level?: string }) => {
      if (error.level === "agent") {
        agentFailure = error.message;
        return;
      }
      failSoon(() => mapConnectError(error));
    });
    client.on("close", () => {
      failSoon(
        () =>
          new SheepdogError(
            "SSH_CONNECT",
            sourceName,
            `${hopName(hop)} closed the connection before it was ready.${proxyNote()} Check that an SSH server listens there${proxy ? " and that the ProxyCommand works (run it by hand)" : ""}.`,
          ),
      );
    });

    const mapConnectError = (error: Error & { level?: string; code?: string }): SheepdogError => {
      if (hostKeyRefusal) return hostKeyRefusal;
      const where = `${hop.hostName}:${hop.port}`;
      if (error.level === "client-authentication") {
        let message = `${hopName(hop)} refused every key Sheepdog offered (${tried.join(", ") || "none"}).`;
        if (serverMethods && !serverMethods.includes("publickey")) {
          message = `${hopName(hop)} does not accept keys (it offers ${serverMethods.join(", ") || "nothing"}); Sheepdog authenticates with keys only.`;
        }
        if (agentFailure) message += ` The SSH agent could not be used: ${agentFailure}.`;
        message += ` Install your public key in ~/.ssh/authorized_keys on ${hop.hostName} ("ssh-copy-id -p ${hop.port} ${hop.user}@${hop.hostName}"), or pass keyfile.`;
        message += passphraseAdvice(hop);
        return new SheepdogError("SSH_AUTH", sourceName, message, { cause: error });
      }
      if (/Too many authentication failures/i.test(error.message)) {
        return new SheepdogError(
          "SSH_AUTH",
          sourceName,
          `${hopName(hop)} stopped accepting keys after too many failures (its MaxAuthTries), before Sheepdog had tried them all (${tried.join(", ")}). The SSH agent probably holds many other keys: add "IdentitiesOnly yes" and an "IdentityFile" for this host to your SSH config, or remove keys from the agent (ssh-add -d).`,
          { cause: error },
        );
      }
      if (/no matching host key format/.test(error.message)) {
        const known = [...new Set(knownTypes.map(keyTypeLabel))].join(", ");
        return new HostKeyChangedError(
          {
            host: hop.hostName,
            port: hop.port,
            knownHostsPath: hop.knownHostsFiles[0] ?? "~/.ssh/known_hosts",
            knownAt: knowledge.keys.map((entry) => `${entry.file}:${entry.line}`),
          },
          `WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! ${where} no longer offers a host key of the type known_hosts holds for it (${known}). Its keys may have been replaced, or someone may be impersonating it. Sheepdog refuses to connect. If the change is expected, remove the old keys with "ssh-keygen -R ${quoteShell(hop.hostKeyName)}" and run "${keyscanCommand(hop)}" after checking the fingerprint.`,
        );
      }
      if (error.level === "client-socket" || error.level === "client-dns") {
        const code = error.code;
        if (code === "ECONNREFUSED") {
          return new SheepdogError(
            "SSH_CONNECT",
            sourceName,
            `Cannot reach ${where}: connection refused. Check that sshd runs there and that the port is right (Port in your SSH config, or the port option).`,
            { cause: error },
          );
        }
        if (code === "ENOTFOUND" || code === "EAI_AGAIN" || error.level === "client-dns") {
          return new SheepdogError(
            "SSH_CONNECT",
            sourceName,
            `Cannot resolve the host name "${hop.hostName}". Check the spelling, or set HostName in your SSH config.`,
            { cause: error },
          );
        }
      }
      if (proxy?.exit !== undefined) {
        return new SheepdogError(
          "SSH_CONNECT",
          sourceName,
          `Cannot connect to ${hopName(hop)} through its ProxyCommand (${error.message}).${proxyNote()} Run the ProxyCommand by hand to see why.`,
          { cause: error },
        );
      }
      return SheepdogError.from(
        error,
        "SSH_CONNECT",
        sourceName,
        `Cannot connect to ${hopName(hop)}. Check that the host is reachable and runs an SSH server`,
      );
    };

    const queue = [...methods];
    try {
      client.connect({
        host: hop.hostName,
        port: hop.port,
        username: hop.user,
        ...(sock ? { sock } : {}),
        readyTimeout: 0,
        keepaliveInterval: settings.keepaliveIntervalMs,
        keepaliveCountMax: settings.keepaliveCountMax,
        ...(serverHostKey ? { algorithms: { serverHostKey: serverHostKey as never[] } } : {}),
        hostVerifier: (key: Buffer) => {
          const verdict = verifyHostKey(knowledge, key);
          if (verdict.ok) return true;
          hostKeyRefusal = hostKeyError(hop, knowledge, key);
          return false;
        },
        authHandler: (methodsLeft, _partialSuccess, next) => {
          if (methodsLeft) serverMethods = methodsLeft;
          if (methodsLeft && !methodsLeft.includes("publickey")) return next(false as never);
          const method = queue.shift();
          if (!method) return next(false as never);
          tried.push(method.label);
          return next(method.auth as never);
        },
      });
      // Small packets at once: without this, Nagle's algorithm and delayed ACKs add ~40 ms
      // to every command's round trips.
      client.setNoDelay(true);
    } catch (error) {
      fail(
        SheepdogError.from(error, "SSH_CONNECT", sourceName, `Cannot connect to ${hopName(hop)}`),
      );
    }
  });
}
