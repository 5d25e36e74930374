import type { Server } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { SheepdogError } from "@sheepdog/contracts";
import type { NodeListener } from "./dispatch.js";
import { source } from "./source.js";

/** How and where to listen. */
export interface ListenOptions {
  host: string;
  /** `0` picks a free port. */
  port: number;
  /** How long a request (headers and body) may take to arrive before a 408. */
  requestTimeoutMs: number;
  /** Told about server errors after it listens. */
  onError: (error: unknown) => void;
}

/** A listening HTTP server. */
export interface Listening {
  /** The port it got. */
  port: number;
  /** The base URL on this machine (no trailing slash). */
  url: string;
  /**
   * Stops listening and resolves once open requests finish (connections still open after 2 s
   * are closed). Idempotent: every call shares the first.
   */
  close(): Promise<void>;
}

function listenError(error: NodeJS.ErrnoException, host: string, port: number): SheepdogError {
  if (error.code === "EADDRINUSE") {
    return new SheepdogError(
      "SERVER_FAILED",
      source,
      `Port ${port} on ${host} is in use by another program. Choose another port, leave the port unset to pick a free one, or stop the program using it.`,
      { cause: error },
    );
  }
  if (error.code === "EACCES") {
    return new SheepdogError(
      "SERVER_FAILED",
      source,
      `Not allowed to listen on port ${port} on ${host}. Choose a port above 1023, or leave the port unset to pick a free one.`,
      { cause: error },
    );
  }
  if (error.code === "EADDRNOTAVAIL" || error.code === "ENOTFOUND") {
    return new SheepdogError(
      "SERVER_FAILED",
      source,
      `This machine has no address ${host} to listen on. Use "0.0.0.0" to listen on every address.`,
      { cause: error },
    );
  }
  return SheepdogError.from(
    error,
    "SERVER_FAILED",
    source,
    `Cannot listen on port ${port} on ${host}`,
  );
}

function baseUrl(host: string, port: number): string {
  if (host === "0.0.0.0" || host === "") return `http://127.0.0.1:${port}`;
  if (host === "::") return `http://[::1]:${port}`;
  return host.includes(":") ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}

function closer(server: Server, markClosing: () => void): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => {
    markClosing();
    closing ??= new Promise<void>((resolve) => {
      const force = setTimeout(() => server.closeAllConnections(), 2_000);
      force.unref();
      // A kept-alive connection whose answer was under way becomes idle after it: close it then.
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      sweep.unref();
      server.close(() => {
        clearTimeout(force);
        clearInterval(sweep);
        resolve();
      });
      server.closeIdleConnections();
    });
    return closing;
  };
}

/**
 * Starts an HTTP server with `listener` and waits until it listens. Rejects with a
 * `SheepdogError` (`SERVER_FAILED`) when the port is taken or cannot be used.
 */
export async function listen(options: ListenOptions, listener: NodeListener): Promise<Listening> {
  const { host, port: requestedPort, requestTimeoutMs } = options;
  const server = createServer(
    {
      requestTimeout: requestTimeoutMs,
      headersTimeout: Math.min(60_000, requestTimeoutMs),
      // How often node looks for requests past their time; it answers those with 408.
      connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(requestTimeoutMs / 4))),
      keepAliveTimeout: 5_000,
    },
    (request, response) => {
      // A closing server answers what is under way, and keeps no connection for more.
      if (closing) response.setHeader("connection", "close");
      listener(request, response);
    },
  );
  let closing = false;
  await new Promise<void>((resolve, reject) => {
    const onListenError = (error: NodeJS.ErrnoException) => {
      reject(listenError(error, host, requestedPort));
    };
    server.once("error", onListenError);
    server.listen(requestedPort, host, () => {
      server.off("error", onListenError);
      resolve();
    });
  });
  server.on("error", options.onError);
  const port = (server.address() as AddressInfo).port;
  const markClosing = (): void => {
    closing = true;
  };
  return { port, url: baseUrl(host, port), close: closer(server, markClosing) };
}
