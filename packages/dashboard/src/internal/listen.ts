import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { SheepdogError } from "@sheepdog/contracts";
import { source } from "./source.js";

/** A listening HTTP server. */
export interface Listening {
  port: number;
  /** Stops listening; connections still open after `graceMs` are cut. Idempotent. */
  close(graceMs: number): Promise<void>;
}

function listenError(error: NodeJS.ErrnoException, host: string, port: number): SheepdogError {
  const where = `port ${port} on ${host}`;
  if (error.code === "EADDRINUSE") {
    return new SheepdogError(
      "SERVER_FAILED",
      source,
      `The dashboard cannot listen on ${where}: another program uses it. Choose another port, or leave it unset to pick a free one.`,
      { cause: error, detail: { host, port } },
    );
  }
  if (error.code === "EACCES") {
    return new SheepdogError(
      "SERVER_FAILED",
      source,
      `The dashboard is not allowed to listen on ${where}. Choose a port above 1023, or leave it unset to pick a free one.`,
      { cause: error, detail: { host, port } },
    );
  }
  return SheepdogError.from(
    error,
    "SERVER_FAILED",
    source,
    `The dashboard cannot listen on ${where}. Check listen.host names an address of this machine`,
    { detail: { host, port } },
  );
}

function closer(server: Server): (graceMs: number) => Promise<void> {
  let closing: Promise<void> | undefined;
  return (graceMs) => {
    closing ??= new Promise<void>((resolve) => {
      const force = setTimeout(() => server.closeAllConnections(), graceMs);
      force.unref();
      server.close(() => {
        clearTimeout(force);
        resolve();
      });
      server.closeIdleConnections();
    });
    return closing;
  };
}

/** Starts an HTTP server with `listener` on `host:port` (0 picks a free port). */
export async function listen(
  host: string,
  port: number,
  listener: (req: IncomingMessage, res: ServerResponse) => void,
  onError: (error: unknown) => void,
): Promise<Listening> {
  const server = createServer({ headersTimeout: 30_000, requestTimeout: 60_000 }, listener);
  await new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => reject(listenError(error, host, port));
    server.once("error", failed);
    server.listen(port, host, () => {
      server.off("error", failed);
      resolve();
    });
  });
  server.on("error", onError);
  return { port: (server.address() as AddressInfo).port, close: closer(server) };
}
