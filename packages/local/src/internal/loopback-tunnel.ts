import { connect, createServer, type Socket } from "node:net";
import type { ReverseTunnel } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import { source } from "./source.js";

/** How long a closing tunnel lets the connections under way finish. */
const DRAIN_MS = 3_000;

/**
 * `tunnelBack` of this machine: a port on the loopback whose connections are carried to
 * `localPort` (the "remote" machine is this one, so its loopback is ours).
 */
export async function loopbackTunnel(localPort: number): Promise<ReverseTunnel> {
  if (!Number.isInteger(localPort) || localPort < 1 || localPort > 65535) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `tunnelBack needs a port from 1 to 65535, not ${String(localPort)}.`,
    );
  }
  const sockets = new Set<Socket>();
  const server = createServer((incoming) => {
    const outgoing = connect({ host: "127.0.0.1", port: localPort });
    for (const socket of [incoming, outgoing]) {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => {
        sockets.delete(socket);
        incoming.destroy();
        outgoing.destroy();
      });
    }
    incoming.pipe(outgoing).pipe(incoming);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  const remotePort = typeof address === "object" && address !== null ? address.port : 0;
  let markEnded!: () => void;
  const ended = new Promise<void>((resolve) => {
    markEnded = resolve;
  });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      // Connections under way finish (for a while); then whatever is left is cut.
      const cut = setTimeout(() => {
        for (const socket of sockets) socket.destroy();
      }, DRAIN_MS);
      cut.unref();
      server.close(() => {
        clearTimeout(cut);
        resolve();
      });
    }).then(markEnded);
    return closing;
  };
  return { remotePort, ended, close };
}
