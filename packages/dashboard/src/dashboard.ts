import { randomBytes } from "node:crypto";
import type { RequestId, Store } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import { dashboardApp, nodeListener } from "./internal/app.js";
import { Assets } from "./internal/assets.js";
import { EventStreams } from "./internal/event-streams.js";
import { Gate } from "./internal/gate.js";
import { listen } from "./internal/listen.js";
import { RequestDetails } from "./internal/request-details.js";
import { RequestRows } from "./internal/request-rows.js";
import { RequestWatch } from "./internal/request-watch.js";
import { source } from "./internal/source.js";

/**
 * What the page's buttons do, given by the program that owns the requests' cluster (core).
 * An action left out has no button.
 */
export interface DashboardActions {
  /** Cancels request `id`'s job on its cluster. */
  cancel?(id: RequestId): Promise<void>;
  /** Runs request `id`'s failed tasks again. */
  retryFailed?(id: RequestId): Promise<void>;
}

/** Where the dashboard listens. */
export interface DashboardListen {
  /**
   * The address. Anything but loopback lets other machines reach the page (the token still
   * guards it): prefer `ssh -L` to reach it from another machine.
   * @default "127.0.0.1"
   */
  host?: string;
  /** The TCP port; `0` picks a free one. @default 0 */
  port?: number;
}

/** Options of {@link createDashboard}. */
export interface DashboardOptions {
  /** The store whose requests it shows. The caller keeps ownership (and closes it). */
  store: Store;
  /** What the page's buttons do; without it the page has none. */
  actions?: DashboardActions;
  listen?: DashboardListen;
  /**
   * The secret in the page's URL, at least 16 characters of `A-Z a-z 0-9 - _`.
   * @default 32 random bytes, base64url
   */
  token?: string;
  /** How often the store's counts are read, in milliseconds. @default 500 */
  pollMs?: number;
  /** Shown in the page's header (the store's file, say). */
  title?: string;
  /**
   * Told about failures that are not the browser's fault (the store failing, an action failing
   * with an error that is not a `SheepdogError`). @default writes one line to stderr
   */
  onError?: (error: unknown) => void;
}

/** A running dashboard; see {@link createDashboard}. */
export interface Dashboard extends AsyncDisposable {
  /**
   * The page's address with its token, `http://127.0.0.1:<port>/?token=...`: give it to the
   * person who may see the store, and to no one else. A getter, so that logging the dashboard
   * object does not print it.
   */
  readonly url: string;
  /** The address without the token, `http://127.0.0.1:<port>`. */
  readonly origin: string;
  /** The port it listens on. */
  readonly port: number;
  /** Ends the page's event streams and stops listening. Idempotent. */
  close(): Promise<void>;
}

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{16,512}$/;

function invalid(message: string): SheepdogError {
  return new SheepdogError("CONFIG_INVALID", source, message);
}

function defaultOnError(error: unknown): void {
  const detail = error instanceof Error ? error.message : String(error);
  console.error(`[sheepdog] [${source}] ${detail}`);
}

/** The options with their defaults, checked. */
function resolved(options: DashboardOptions) {
  const store = options?.store;
  if (typeof store?.listRequests !== "function" || typeof store.counts !== "function") {
    throw invalid(
      "store must be a Store (listRequests, counts, getRequest, ...). Pass the store to show.",
    );
  }
  const host = options.listen?.host ?? "127.0.0.1";
  const port = options.listen?.port ?? 0;
  if (typeof host !== "string" || host === "")
    throw invalid('listen.host must be an address, like "127.0.0.1".');
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw invalid("listen.port must be an integer from 0 to 65535 (0 picks a free port).");
  }
  const token = options.token ?? randomBytes(32).toString("base64url");
  if (typeof token !== "string" || !TOKEN_PATTERN.test(token)) {
    throw invalid(
      "token must be 16 to 512 characters of A-Z, a-z, 0-9, - and _. Leave it unset for a random one.",
    );
  }
  const pollMs = options.pollMs ?? 500;
  if (!Number.isInteger(pollMs) || pollMs < 50 || pollMs > 60_000) {
    throw invalid("pollMs must be an integer number of milliseconds from 50 to 60000.");
  }
  const actions = options.actions ?? {};
  for (const name of ["cancel", "retryFailed"] as const) {
    if (actions[name] !== undefined && typeof actions[name] !== "function") {
      throw invalid(`actions.${name} must be a function of a request id.`);
    }
  }
  return {
    store,
    host,
    port,
    token,
    pollMs,
    actions,
    title: options.title ?? null,
    onError: options.onError ?? defaultOnError,
  };
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The origin a browser on this machine uses for an address and port. */
function originOf(host: string, port: number): string {
  if (host === "0.0.0.0" || host === "") return `http://127.0.0.1:${port}`;
  if (host === "::") return `http://[::1]:${port}`;
  return host.includes(":") ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}

/** A dashboard that listens; `url` is a getter, so that logging the object does not print it. */
class RunningDashboard implements Dashboard {
  readonly origin: string;
  readonly port: number;
  readonly #token: string;
  readonly #stop: () => Promise<void>;
  #closing: Promise<void> | undefined;

  constructor(origin: string, port: number, token: string, stop: () => Promise<void>) {
    this.origin = origin;
    this.port = port;
    this.#token = token;
    this.#stop = stop;
  }

  get url(): string {
    return `${this.origin}/?token=${this.#token}`;
  }

  close(): Promise<void> {
    this.#closing ??= this.#stop();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Serves a live web page of every request in `store`: progress, throughput and ETA of each;
 * for one request, its tasks' states, reports per second, errors grouped with their
 * tracebacks and arguments, dead tasks with their causes, and its attempts; with `actions`,
 * buttons to cancel a request or run its failed tasks again. Every page, file and API answer
 * needs the token in `url`. The page's assets ship in this package; nothing is built.
 *
 * Rejects with `CONFIG_INVALID` for a bad option and `SERVER_FAILED` when the port is taken.
 *
 * @example
 * ```ts
 * await using store = sqliteStore({ dbfile: "./sheepdog.sqlite" });
 * await using dashboard = await createDashboard({ store });
 * console.log(`Open ${dashboard.url}`);
 * ```
 */
export async function createDashboard(options: DashboardOptions): Promise<Dashboard> {
  const { store, host, port, token, pollMs, actions, title, onError } = resolved(options);
  const assets = new Assets();
  const watch = new RequestWatch(store, pollMs, onError);
  const rows = new RequestRows(store, watch);
  const details = new RequestDetails(store, watch, rows);
  const streams = new EventStreams(watch, rows, onError);
  const app = dashboardApp({
    gate: new Gate(token, isLoopback(host)),
    assets,
    watch,
    rows,
    details,
    streams,
    actions: {
      cancel: actions.cancel?.bind(actions),
      retryFailed: actions.retryFailed?.bind(actions),
    },
    title,
    onError,
  });
  let listening: Awaited<ReturnType<typeof listen>>;
  try {
    listening = await listen(host, port, nodeListener(app), onError);
  } catch (error) {
    details.close();
    watch.close();
    await streams.closeAll();
    throw error;
  }
  const origin = originOf(host, listening.port);
  return new RunningDashboard(origin, listening.port, token, async () => {
    details.close();
    watch.close();
    await streams.closeAll();
    await listening.close(1_000);
  });
}
