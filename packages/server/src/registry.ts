import type { Store } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type { ReportListener, ServerOptions, SheepdogServer } from "./server.js";
import { startServer } from "./server.js";

/** Options of {@link serverFor}. */
export interface ServerForOptions extends Omit<ServerOptions, "store"> {
  /**
   * What the store holds, as a stable identity: the absolute path of the dbfile for SQLite.
   * A port already serving a different key in this process is an error.
   */
  storeKey: string;
  /**
   * The store to serve, or a function that opens it. A function is called only when a new
   * server starts, and the store it opens is closed with that server; a store given directly
   * stays the caller's to close.
   */
  store: Store | (() => Store | Promise<Store>);
}

interface Entry {
  storeKey: string;
  /** The requested port, or 0 for "any free port". */
  requestedPort: number;
  server: Promise<SheepdogServer>;
  handles: number;
  closeStore: (() => Promise<void>) | undefined;
}

const entries = new Set<Entry>();
/** Servers being closed, by port: a new server on that port waits for the old one to go. */
const closing = new Map<number, Promise<void>>();

function findEntry(port: number, storeKey: string): Entry | undefined {
  for (const entry of entries) {
    if (port === 0 ? entry.storeKey === storeKey : entry.requestedPort === port) return entry;
  }
  return undefined;
}

/** A server started on a free port also answers a later call that names the port it got. */
async function findByActualPort(port: number): Promise<Entry | undefined> {
  for (const entry of entries) {
    if (entry.requestedPort !== 0) continue;
    const server = await entry.server.catch(() => undefined);
    if (server?.port === port && entries.has(entry)) return entry;
  }
  return undefined;
}

function startEntry(options: ServerForOptions, port: number): Entry {
  const { storeKey, store: storeOption, onReport: _onReport, ...serverOptions } = options;
  const entry: Entry = {
    storeKey,
    requestedPort: port,
    handles: 0,
    closeStore: undefined,
    server: Promise.resolve(undefined as unknown as SheepdogServer),
  };
  entry.server = (async () => {
    await closing.get(port);
    let store: Store;
    if (typeof storeOption === "function") {
      const opened = await storeOption();
      store = opened;
      entry.closeStore = () => opened.close();
    } else {
      store = storeOption;
    }
    try {
      return await startServer({ ...serverOptions, port, store });
    } catch (error) {
      await entry.closeStore?.().catch(() => undefined);
      throw error;
    }
  })();
  entries.add(entry);
  entry.server.catch(() => entries.delete(entry));
  return entry;
}

async function stopEntry(entry: Entry, server: SheepdogServer): Promise<void> {
  entries.delete(entry);
  const stopping = (async () => {
    await server.close();
    await entry.closeStore?.();
  })();
  closing.set(server.port, stopping);
  try {
    await stopping;
  } finally {
    if (closing.get(server.port) === stopping) closing.delete(server.port);
  }
}

function handleFor(
  entry: Entry,
  server: SheepdogServer,
  onReport?: ReportListener,
): SheepdogServer {
  entry.handles += 1;
  const unsubscribes: (() => void)[] = [];
  if (onReport) unsubscribes.push(server.onReport(onReport));
  let released: Promise<void> | undefined;
  const close = (): Promise<void> => {
    released ??= (async () => {
      for (const unsubscribe of unsubscribes) unsubscribe();
      entry.handles -= 1;
      if (entry.handles === 0 && entries.has(entry)) await stopEntry(entry, server);
    })();
    return released;
  };
  return {
    url: server.url,
    port: server.port,
    host: server.host,
    onReport(listener) {
      const unsubscribe = server.onReport(listener);
      unsubscribes.push(unsubscribe);
      return unsubscribe;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * The server for a port in this process, started on first use and shared after that (as the
 * original Sheepdog's `get_server`). Each call returns its own handle: closing a handle
 * removes its listeners, and the server stops when its last handle is closed.
 *
 * With `port` unset or 0, a server already serving `storeKey` is reused, else one starts on a
 * free port. With a fixed port, the server on that port is reused when it serves the same
 * `storeKey`; when it serves another, this rejects with `SERVER_FAILED`. A port taken by
 * another program rejects with `SERVER_FAILED` as {@link startServer} does. A reused server
 * keeps the options it was started with (host, limits, store); only `onReport` is per handle.
 *
 * @example
 * ```ts
 * await using server = await serverFor({
 *   port: 0,
 *   storeKey: resolve("sheepdog.sqlite"),
 *   store: () => sqliteStore({ database: "sheepdog.sqlite" }),
 * });
 * ```
 */
export async function serverFor(options: ServerForOptions): Promise<SheepdogServer> {
  const port = options.port ?? 0;
  let entry = findEntry(port, options.storeKey);
  if (entry === undefined && port !== 0) {
    entry = (await findByActualPort(port)) ?? findEntry(port, options.storeKey);
  }
  if (entry !== undefined && entry.storeKey !== options.storeKey) {
    throw new SheepdogError(
      "SERVER_FAILED",
      "server",
      `Port ${port} already serves ${entry.storeKey} in this process, not ${options.storeKey}. Use the same dbfile for both, another port, or leave the port unset to pick a free one.`,
    );
  }
  entry ??= startEntry(options, port);
  // Count the handle while waiting, so that a concurrent last close cannot stop the server.
  entry.handles += 1;
  let server: SheepdogServer;
  try {
    server = await entry.server;
  } finally {
    entry.handles -= 1;
  }
  return handleFor(entry, server, options.onReport);
}

/** Closes every server {@link serverFor} started in this process, whatever handles remain. */
export async function closeServers(): Promise<void> {
  const all = [...entries];
  entries.clear();
  await Promise.all(
    all.map(async (entry) => {
      const server = await entry.server.catch(() => undefined);
      entry.handles = 0;
      if (server) await stopEntry(entry, server);
    }),
  );
}
