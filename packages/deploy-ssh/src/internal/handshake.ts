import type { Duplex } from "node:stream";
import { SheepdogError } from "@sheepdog/contracts";
import ssh2, { type Client } from "ssh2";
import {
  type AuthAttempt,
  type AuthMethod,
  authMethods,
  keysRefused,
  noMethodsError,
  tooManyKeys,
} from "./auth-methods.js";
import { type Hop, hopName } from "./hop.js";
import {
  type HostKeyChecks,
  hostKeyChecks,
  hostKeyRefusal,
  keyTypesChanged,
} from "./host-key-refusal.js";
import { verifyHostKey } from "./known-hosts.js";
import type { ProxyCommandStream } from "./proxy-command.js";
import { source } from "./source.js";

// ssh2 is CommonJS: Node's ESM loader sees only its default export.
const { Client: SshClient } = ssh2;

/** Settings for the whole chain of hops. */
export interface ConnectSettings {
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
}

/** One handshake with one hop: what it needs and what it has learnt, for its error. */
interface Handshake extends AuthAttempt {
  hop: Hop;
  checks: HostKeyChecks;
  /** The ProxyCommand the connection runs through, when there is one. */
  proxy: ProxyCommandStream | undefined;
  /** Set when the host key was refused: the error to report whatever ssh2 says next. */
  hostKeyRefusal?: SheepdogError;
  /** True once the handshake has resolved or rejected. */
  settled: boolean;
  resolve(client: Client): void;
  reject(error: SheepdogError): void;
}

function succeed(handshake: Handshake, client: Client): void {
  if (handshake.settled) return;
  handshake.settled = true;
  handshake.resolve(client);
}

function fail(handshake: Handshake, error: SheepdogError): void {
  if (handshake.settled) return;
  handshake.settled = true;
  handshake.reject(error);
}

/** How the ProxyCommand ended, as a sentence for messages ("" while it runs or without one). */
function proxyNote(proxy: ProxyCommandStream | undefined): string {
  if (proxy?.exit === undefined) return "";
  const how = proxy.exit.signal ? `signal ${proxy.exit.signal}` : `code ${proxy.exit.code}`;
  return ` The ProxyCommand exited with ${how}${proxy.stderrTail ? `: ${proxy.stderrTail.trim()}` : ""}.`;
}

/** Fails once the ProxyCommand (if any) has exited (within 1 s), so that its message can be told. */
function failSoon(handshake: Handshake, make: () => SheepdogError): void {
  if (handshake.settled) return;
  const proxy = handshake.proxy;
  if (!proxy || proxy.exit !== undefined) {
    fail(handshake, make());
    return;
  }
  const timer = setTimeout(() => fail(handshake, make()), 1000);
  proxy.once("proxy-exit", () => {
    clearTimeout(timer);
    fail(handshake, make());
  });
}

/** A refused connection or an unknown host name, or `undefined` for other socket errors. */
function socketError(
  hop: Hop,
  error: Error & { level?: string; code?: string },
): SheepdogError | undefined {
  if (error.level !== "client-socket" && error.level !== "client-dns") return undefined;
  if (error.code === "ECONNREFUSED") {
    return new SheepdogError(
      "SSH_CONNECT",
      source,
      `Cannot reach ${hop.hostName}:${hop.port}: connection refused. Check that sshd runs there and that the port is right (Port in your SSH config, or sshPort).`,
      { cause: error },
    );
  }
  if (error.code === "ENOTFOUND" || error.code === "EAI_AGAIN" || error.level === "client-dns") {
    return new SheepdogError(
      "SSH_CONNECT",
      source,
      `Cannot resolve the host name "${hop.hostName}". Check the spelling, or set HostName in your SSH config.`,
      { cause: error },
    );
  }
  return undefined;
}

/** Turns an error ssh2 reported during the handshake into the SheepdogError that explains it. */
function handshakeError(
  handshake: Handshake,
  error: Error & { level?: string; code?: string },
): SheepdogError {
  const { hop, proxy } = handshake;
  if (handshake.hostKeyRefusal) return handshake.hostKeyRefusal;
  if (error.level === "client-authentication") return keysRefused(hop, handshake, error);
  if (/Too many authentication failures/i.test(error.message)) {
    return tooManyKeys(hop, handshake, error);
  }
  if (/no matching host key format/.test(error.message)) {
    return keyTypesChanged(hop, handshake.checks.knowledge);
  }
  const socket = socketError(hop, error);
  if (socket) return socket;
  if (proxy?.exit !== undefined) {
    return new SheepdogError(
      "SSH_CONNECT",
      source,
      `Cannot connect to ${hopName(hop)} through its ProxyCommand (${error.message}).${proxyNote(proxy)} Run the ProxyCommand by hand to see why.`,
      { cause: error },
    );
  }
  return SheepdogError.from(
    error,
    "SSH_CONNECT",
    source,
    `Cannot connect to ${hopName(hop)}. Check that the host is reachable and runs an SSH server`,
  );
}

/** The server (or the ProxyCommand) closed the connection before it was ready. */
function closedEarly(handshake: Handshake): SheepdogError {
  const { hop, proxy } = handshake;
  return new SheepdogError(
    "SSH_CONNECT",
    source,
    `${hopName(hop)} closed the connection before it was ready.${proxyNote(proxy)} Check that an SSH server listens there${proxy ? " and that the ProxyCommand works (run it by hand)" : ""}.`,
  );
}

function watch(client: Client, handshake: Handshake): void {
  client.on("ready", () => succeed(handshake, client));
  client.on("error", (error: Error & { level?: string }) => {
    if (error.level === "agent") {
      handshake.agentFailure = error.message;
      return;
    }
    failSoon(handshake, () => handshakeError(handshake, error));
  });
  client.on("close", () => failSoon(handshake, () => closedEarly(handshake)));
}

/** Starts ssh2's handshake: host key check by known_hosts, then the methods in turn. */
function start(
  client: Client,
  handshake: Handshake,
  settings: ConnectSettings,
  sock: Duplex | undefined,
  methods: AuthMethod[],
): void {
  const { hop, checks } = handshake;
  const queue = [...methods];
  client.connect({
    host: hop.hostName,
    port: hop.port,
    username: hop.user,
    ...(sock ? { sock } : {}),
    readyTimeout: 0,
    keepaliveInterval: settings.keepaliveIntervalMs,
    keepaliveCountMax: settings.keepaliveCountMax,
    ...(checks.serverHostKey
      ? { algorithms: { serverHostKey: checks.serverHostKey as never[] } }
      : {}),
    hostVerifier: (key: Buffer) => {
      if (verifyHostKey(checks.knowledge, key).ok) return true;
      handshake.hostKeyRefusal = hostKeyRefusal(hop, checks.knowledge, key);
      return false;
    },
    authHandler: (methodsLeft, _partialSuccess, next) => {
      if (methodsLeft) handshake.serverMethods = methodsLeft;
      if (methodsLeft && !methodsLeft.includes("publickey")) return next(false as never);
      const method = queue.shift();
      if (!method) return next(false as never);
      handshake.tried.push(method.label);
      return next(method.auth as never);
    },
  });
  // Small packets at once: without this, Nagle's algorithm and delayed ACKs add ~40 ms
  // to every command's round trips.
  client.setNoDelay(true);
}

/**
 * Logs in to `hop` over `sock` (a jump host's forwarded stream or a ProxyCommand), or over
 * TCP: checks the host key against known_hosts, then offers the agent and key files. Resolves
 * with the ready client; rejects with a SheepdogError that says why and how to fix it. The
 * client is added to `resources`, which the caller releases on failure.
 */
export function handshake(
  hop: Hop,
  settings: ConnectSettings,
  resources: { add(release: () => void): void },
  sock: Duplex | undefined,
  proxy: ProxyCommandStream | undefined,
): Promise<Client> {
  return new Promise<Client>((resolve, reject) => {
    const methods = authMethods(hop);
    if (methods.length === 0) {
      reject(noMethodsError(hop));
      return;
    }
    let checks: HostKeyChecks;
    try {
      checks = hostKeyChecks(hop);
    } catch (error) {
      reject(error);
      return;
    }
    const client = new SshClient();
    resources.add(() => client.end());
    const state: Handshake = { hop, checks, proxy, tried: [], settled: false, resolve, reject };
    watch(client, state);
    try {
      start(client, state, settings, sock, methods);
    } catch (error) {
      fail(
        state,
        SheepdogError.from(error, "SSH_CONNECT", source, `Cannot connect to ${hopName(hop)}`),
      );
    }
  });
}
