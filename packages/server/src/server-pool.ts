import type { Store } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import { source } from "./internal/source.js";
import type { ReportListener, ServerOptions, SheepdogServer } from "./server.js";
import { startServer } from "./server.js";

/** Options of {@link ServerPool.serverFor}. */
export interface ServerForOptions extends Omit<ServerOptions, "store"> {
  /**
   * What the store holds, as a stable identity: the absolute path of the dbfile for SQLite.
   * A port already serving a different key in this pool is an error.
   */
  storeKey: string;
  /**
   * The store to serve, or a function that opens it. A function is called only when a new
   * server starts, and the store it opens is closed with that server; a store given directly
   * stays the caller's to close.
   */
  store: Store | (() => Store | Promise<Store>);
}

/**
 * Servers shared by port, as the original Sheepdog's `get_server` shares one per process,
 * but owned by whoever made the pool (a Sheepdog instance owns one): its `close()` stops
 * every server it started.
 */
export interface ServerPool extends AsyncDisposable {
  /**
   * The server for a port in this pool, started on first use and shared after that. Each call
   * returns its own handle: closing a handle removes its listeners, and the server stops when
   * its last handle is closed.
   *
   * With `port` unset or 0, a server already serving `storeKey` is reused, else one starts on
   * a free port. With a fixed port, the server on that port is reused when it serves the same
   * `storeKey`; when it serves another, this rejects with `SERVER_FAILED`. A port taken by
   * another program rejects with `SERVER_FAILED` as {@link startServer} does. A reused server
   * keeps the options it was started with (host, limits, store); only `onReport` is per
   * handle. Rejects with `CLOSED` once the pool is closed.
   */
  serverFor(options: ServerForOptions): Promise<SheepdogServer>;
  /**
   * Stops every server of the pool, whatever handles remain, and closes the stores it opened.
   * Idempotent; the pool refuses new servers after it.
   */
  close(): Promise<void>;
}

interface Entry {
  storeKey: string;
  /** The requested port, or 0 for "any free port". */
  requestedPort: number;
  server: Promise<SheepdogServer>;
  handles: number;
  closeStore: (() => Promise<void>) | undefined;
}

/** The store a new server serves, and how to close it when the pool opened it. */
async function openStore(
  option: ServerForOptions["store"],
): Promise<{ store: Store; close: (() => Promise<void>) | undefined }> {
  if (typeof option !== "function") return { store: option, close: undefined };
  const opened = await option();
  return { store: opened, close: () => opened.close() };
}

class Pool implements ServerPool {
  readonly #entries = new Set<Entry>();
  /** Servers being closed, by port: a new server on that port waits for the old one to go. */
  readonly #stopping = new Map<number, Promise<void>>();
  #closed: Promise<void> | undefined;

  async serverFor(options: ServerForOptions): Promise<SheepdogServer> {
    this.#checkOpen();
    const port = options.port ?? 0;
    let entry = this.#find(port, options.storeKey);
    if (entry === undefined && port !== 0) {
      entry = (await this.#findByActualPort(port)) ?? this.#find(port, options.storeKey);
    }
    if (entry !== undefined && entry.storeKey !== options.storeKey) {
      throw new SheepdogError(
        "SERVER_FAILED",
        source,
        `Port ${port} already serves ${entry.storeKey} in this process, not ${options.storeKey}. Use the same dbfile for both, another port, or leave the port unset to pick a free one.`,
      );
    }
    this.#checkOpen();
    entry ??= this.#start(options, port);
    // Count the handle while waiting, so that a concurrent last close cannot stop the server.
    entry.handles += 1;
    let server: SheepdogServer;
    try {
      server = await entry.server;
    } finally {
      entry.handles -= 1;
    }
    this.#checkOpen();
    return this.#handle(entry, server, options.onReport);
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      const all = [...this.#entries];
      this.#entries.clear();
      await Promise.all(
        all.map(async (entry) => {
          const server = await entry.server.catch(() => undefined);
          entry.handles = 0;
          if (server) await this.#stop(entry, server);
        }),
      );
    })();
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #checkOpen(): void {
    if (this.#closed !== undefined) {
      throw new SheepdogError(
        "CLOSED",
        source,
        "This server pool is closed. Make a new one with serverPool().",
      );
    }
  }

  #find(port: number, storeKey: string): Entry | undefined {
    for (const entry of this.#entries) {
      if (port === 0 ? entry.storeKey === storeKey : entry.requestedPort === port) return entry;
    }
    return undefined;
  }

  /** A server started on a free port also answers a later call that names the port it got. */
  async #findByActualPort(port: number): Promise<Entry | undefined> {
    for (const entry of this.#entries) {
      if (entry.requestedPort !== 0) continue;
      const server = await entry.server.catch(() => undefined);
      if (server?.port === port && this.#entries.has(entry)) return entry;
    }
    return undefined;
  }

  #start(options: ServerForOptions, port: number): Entry {
    const { storeKey, store: storeOption, onReport: _onReport, ...serverOptions } = options;
    const entry: Entry = {
      storeKey,
      requestedPort: port,
      handles: 0,
      closeStore: undefined,
      server: Promise.resolve(undefined as unknown as SheepdogServer),
    };
    entry.server = (async () => {
      await this.#stopping.get(port);
      const { store, close } = await openStore(storeOption);
      entry.closeStore = close;
      try {
        return await startServer({ ...serverOptions, port, store });
      } catch (error) {
        await close?.().catch(() => undefined);
        throw error;
      }
    })();
    this.#entries.add(entry);
    entry.server.catch(() => this.#entries.delete(entry));
    return entry;
  }

  async #stop(entry: Entry, server: SheepdogServer): Promise<void> {
    this.#entries.delete(entry);
    const stopping = (async () => {
      await server.close();
      await entry.closeStore?.();
    })();
    this.#stopping.set(server.port, stopping);
    try {
      await stopping;
    } finally {
      if (this.#stopping.get(server.port) === stopping) this.#stopping.delete(server.port);
    }
  }

  #handle(entry: Entry, server: SheepdogServer, onReport?: ReportListener): SheepdogServer {
    entry.handles += 1;
    const unsubscribes: (() => void)[] = [];
    if (onReport) unsubscribes.push(server.onReport(onReport));
    let released: Promise<void> | undefined;
    const close = (): Promise<void> => {
      released ??= (async () => {
        for (const unsubscribe of unsubscribes) unsubscribe();
        entry.handles -= 1;
        if (entry.handles === 0 && this.#entries.has(entry)) await this.#stop(entry, server);
      })();
      return released;
    };
    return {
      url: server.url,
      port: server.port,
      host: server.host,
      maxBodyBytes: server.maxBodyBytes,
      onReport(listener) {
        const unsubscribe = server.onReport(listener);
        unsubscribes.push(unsubscribe);
        return unsubscribe;
      },
      acceptRoute(authority) {
        const stop = server.acceptRoute(authority);
        unsubscribes.push(stop);
        return stop;
      },
      routeRequests: (authority) => server.routeRequests(authority),
      holdRequest: (request, until) => server.holdRequest(request, until),
      settleTask: (request, task) => server.settleTask(request, task),
      idleTasks: (request) => server.idleTasks(request),
      close,
      [Symbol.asyncDispose]: close,
    };
  }
}

/**
 * A new, empty {@link ServerPool}. Nothing is shared between pools: each one's servers are its
 * own, and its `close()` (or `await using`) stops them.
 *
 * @example
 * ```ts
 * await using pool = serverPool();
 * await using server = await pool.serverFor({
 *   port: 0,
 *   storeKey: resolve("sheepdog.sqlite"),
 *   store: () => sqliteStore({ dbfile: "sheepdog.sqlite" }),
 * });
 * ```
 */
export function serverPool(): ServerPool {
  return new Pool();
}
