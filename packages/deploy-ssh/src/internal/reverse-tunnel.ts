import { connect as connectTcp, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { ReverseTunnel } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type { ForwardingClientLike, TcpConnectionInfo } from "../client-like.js";
import type { ConnectionState } from "./connection-state.js";
import { lostError } from "./connection-state.js";
import { source } from "./source.js";

const LOOPBACK = "127.0.0.1";
/** How long a closing tunnel lets the connections under way finish. */
const DRAIN_MS = 3_000;

/** Resolves once every socket of `sockets` has closed, or after `ms`. */
export function drained(sockets: Set<Socket>, ms: number): Promise<void> {
  if (sockets.size === 0) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    timer.unref();
    const check = setInterval(() => {
      if (sockets.size === 0) done();
    }, 20);
    function done(): void {
      clearTimeout(timer);
      clearInterval(check);
      resolve();
    }
  });
}

/** Whether an ssh2 client can forward remote ports (an injected client may not say). */
function forwarding(client: unknown): ForwardingClientLike | undefined {
  const candidate = client as Partial<ForwardingClientLike>;
  return typeof candidate.forwardIn === "function" && typeof candidate.unforwardIn === "function"
    ? (candidate as ForwardingClientLike)
    : undefined;
}

/**
 * Joins a forwarded channel to a new connection to `localPort`, both ways: an end that
 * finishes sending ends the other's sending side, after all it sent (so an answer followed by
 * a close arrives whole); an error on either cuts both. Tracked in `sockets` until the
 * connection to `localPort` has closed.
 */
function carry(channel: Duplex, localPort: number, sockets: Set<Socket>): void {
  const socket = connectTcp({ host: LOOPBACK, port: localPort });
  sockets.add(socket);
  const cut = (): void => {
    socket.destroy();
    channel.destroy();
  };
  socket.on("error", cut);
  channel.on("error", cut);
  // The channel ends (after what it carries) when the socket has; a closed channel ends both.
  socket.on("close", () => sockets.delete(socket));
  channel.on("close", () => socket.destroy());
  channel.pipe(socket).pipe(channel);
}

/** Asks the server to listen on its loopback; resolves with the port it chose. */
function listenRemotely(client: ForwardingClientLike): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    client.forwardIn(LOOPBACK, 0, (error, port) => (error ? reject(error) : resolve(port)));
  });
}

/**
 * A remote port forward on `state`'s connection: the server listens on its loopback and each
 * connection made there is carried to `localPort` on this machine's loopback. It ends when
 * closed or when the connection is lost.
 */
export async function openReverseTunnel(
  state: ConnectionState,
  name: string,
  localPort: number,
): Promise<ReverseTunnel> {
  const client = forwarding(state.open.client);
  if (!client) {
    throw new SheepdogError(
      "REMOTE_FAILED",
      source,
      `The SSH client given for ${name} cannot forward ports (it has no forwardIn). Pass an ssh2 Client, or let connect() open the connection.`,
    );
  }
  let remotePort: number;
  try {
    remotePort = await listenRemotely(client);
  } catch (error) {
    if (!state.alive) throw lostError(name, state, "a port forward");
    throw SheepdogError.from(
      error,
      "REMOTE_FAILED",
      source,
      `${name} refused to forward a port on its loopback back to this machine. Check AllowTcpForwarding in the server's sshd_config (OpenSSH allows it by default)`,
    );
  }
  const sockets = new Set<Socket>();
  const onConnection = (info: TcpConnectionInfo, accept: () => Duplex, reject: () => void) => {
    if (info.destPort !== remotePort) return;
    if (closed) reject();
    else carry(accept(), localPort, sockets);
  };
  client.on("tcp connection", onConnection);
  let closed = false;
  let markEnded!: () => void;
  const ended = new Promise<void>((resolve) => {
    markEnded = resolve;
  });
  void state.closed.then(() => stop());
  let close: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    close ??= (async () => {
      closed = true;
      if (state.alive) {
        await new Promise<void>((resolve) => {
          try {
            client.unforwardIn(LOOPBACK, remotePort, () => resolve());
          } catch {
            resolve();
          }
        });
        // Answers still on their way back to the nodes get there first.
        await drained(sockets, DRAIN_MS);
      }
      client.removeListener("tcp connection", onConnection);
      for (const socket of sockets) socket.destroy();
      markEnded();
    })();
    return close;
  };
  return { remotePort, ended, close: stop };
}
