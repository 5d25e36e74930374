import type { Duplex } from "node:stream";
import { SheepdogError } from "@sheepdog/contracts";
import type { Client } from "ssh2";
import { type ConnectSettings, handshake } from "./handshake.js";
import { type Hop, hopName } from "./hop.js";
import { ProxyCommandStream } from "./proxy-command.js";
import { source } from "./source.js";

/** An open connection and everything it holds (jump connections, proxy commands). */
export interface Connection {
  client: Client;
  /** Ends the connection and everything under it. Idempotent. */
  dispose(): void;
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
    const timer = setTimeout(() => finish(timeoutError(hop, timeoutMs)), timeoutMs);
    const onAbort = (): void =>
      finish(new SheepdogError("ABORTED", source, `Connecting to ${hopName(hop)} was aborted.`));
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener("abort", onAbort, { once: true });

    openHop(hop, settings, resources).then(
      (client) => finish(undefined, { client, dispose: () => resources.releaseAll() }),
      (error: unknown) =>
        finish(
          SheepdogError.from(error, "SSH_CONNECT", source, `Cannot connect to ${hopName(hop)}`),
        ),
    );
  });
}

function timeoutError(hop: Hop, timeoutMs: number): SheepdogError {
  const through = hop.jump ? ` (through ${hopName(hop.jump)})` : "";
  return new SheepdogError(
    "TIMEOUT",
    source,
    `Connecting to ${hopName(hop)} took longer than ${timeoutMs} ms${through}. Check that the host is up and reachable, or raise connectTimeoutMs.`,
  );
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
    proxy = startProxyCommand(hop, hop.proxyCommand);
    const stream = proxy;
    resources.add(() => stream.destroy());
    sock = proxy;
  }
  return handshake(hop, settings, resources, sock, proxy);
}

function startProxyCommand(hop: Hop, command: string): ProxyCommandStream {
  try {
    return new ProxyCommandStream(command);
  } catch (error) {
    throw SheepdogError.from(
      error,
      "SSH_CONNECT",
      source,
      `Cannot start the ProxyCommand for ${hop.alias}. Check the ProxyCommand line in your SSH config`,
    );
  }
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
              source,
              `The jump host ${hopName(via)} cannot reach ${hop.hostName}:${hop.port}. Check the host and port (HostName and Port in your SSH config), and that the jump host allows TCP forwarding`,
            ),
          );
        } else {
          resolve(stream);
        }
      });
    } catch (error) {
      reject(
        SheepdogError.from(error, "SSH_CONNECT", source, `Cannot forward through ${hopName(via)}`),
      );
    }
  });
}
