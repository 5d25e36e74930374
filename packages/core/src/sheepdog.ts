import type { Cluster, JobRef, RequestId, RequestSummary, Store } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type { Dashboard } from "@sheepdog/dashboard";
import type { PyFunction } from "@sheepdog/serialise";
import type { SheepdogServer } from "@sheepdog/server";
import type { ResolvedConfig, SheepdogConfig } from "./config.js";
import { connectionKeys, missingHost, resolveConfig } from "./config.js";
import { cleanupStaged } from "./internal/cleanup.js";
import type { CloseOptions, Context } from "./internal/context.js";
import { Runtime } from "./internal/context.js";
import { openDashboard } from "./internal/dashboard.js";
import { defaultRunsHere, openDefaultCluster } from "./internal/defaults/cluster.js";
import { dbfileKey } from "./internal/defaults/store.js";
import * as maps from "./internal/maps.js";
import * as ops from "./internal/request-ops.js";
import { serveRequest } from "./internal/serve.js";
import { source } from "./internal/source.js";
import * as streams from "./internal/stream.js";
import { runsOnThisMachine } from "./internal/worker-host.js";
import type {
  CleanupOptions,
  DashboardOptions,
  GetResultsOptions,
  IndexedSettled,
  MapAsyncOptions,
  MapOptions,
  MapSettled,
  MapStreamOptions,
  RecoverOutcome,
  RequestStatus,
  StagedRequest,
} from "./types.js";

/**
 * Options of {@link createSheepdog}: the backends as values, or the configuration the defaults
 * are built from, and the settings every map runs with (resolved as the option, then the
 * `SHEEPDOG_*` variable, then the default).
 */
export interface SheepdogOptions extends Partial<SheepdogConfig> {
  /**
   * Where requests and results are kept. It stays yours: `close()` does not close it.
   * @default a SQLite file at `dbfile` (./sheepdog.sqlite), opened on first use
   */
  store?: Store;
  /**
   * Where jobs run: a scheduler and the remote it is reached through. It stays yours.
   * @default built from `host` for each map: `"local"` runs tasks as local processes,
   * anything else is an SSH connection to that head node with the scheduler that `scheduler`
   * chooses (or that the head node has) over it
   */
  cluster?: Cluster;
  /**
   * Let Ctrl-C (SIGINT) and SIGTERM cancel running maps' jobs, then end the program as the
   * signal would have (only in a program that does not handle those signals itself).
   * Listeners are installed only while a map runs. @default false
   */
  handleSignals?: boolean;
}

/** Options of {@link Sheepdog.serve}. */
export interface ServeOptions {
  /** @default the port `request`'s workers were given, else the `port` setting */
  port?: number;
  /**
   * The address to listen on: `"0.0.0.0"` (every interface) for workers on a cluster's nodes.
   * @default "127.0.0.1": only this machine's workers reach it
   */
  listen?: string;
  /**
   * A request whose workers this server is for: its port is the default, and a relay its
   * workers were given on the head node is started again (over its cluster) while it runs.
   */
  request?: RequestId;
}

/** A Sheepdog instance: maps and requests over one store and one cluster. See {@link createSheepdog}. */
export interface Sheepdog extends AsyncDisposable {
  /**
   * Runs `f` once per argument tuple on the cluster and resolves with the results in argument
   * order, `null` where that task failed (or, with `throwOnError`, rejects with a
   * `TasksFailedError`).
   */
  map<Args extends readonly unknown[], R>(
    f: PyFunction<Args, R>,
    args: Iterable<Args>,
    options?: MapOptions,
  ): Promise<(R | null)[]>;
  /** As {@link Sheepdog.map}, with each task's value or error, and the request id. */
  mapSettled<Args extends readonly unknown[], R>(
    f: PyFunction<Args, R>,
    args: Iterable<Args>,
    options?: MapOptions,
  ): Promise<MapSettled<R>>;
  /**
   * Runs `f` once per argument tuple and yields each outcome (`{ index, ok, value | error }`)
   * as it arrives, in completion order (or, with `order: "arguments"`, in argument order).
   * `args` (an iterable or an async iterable) is read a window at a time, as the consumer takes
   * the outcomes; each window is a request of its own. Leaving the loop, an exception in it or
   * an abort cancels the jobs still running.
   */
  mapStream<Args extends readonly unknown[], R>(
    f: PyFunction<Args, R>,
    args: Iterable<Args> | AsyncIterable<Args>,
    options?: MapStreamOptions,
  ): AsyncGenerator<IndexedSettled<R>, void, undefined>;
  /**
   * Submits the job and resolves with the request id once it is queued. Its server serves the
   * workers until every task has reported (then nothing of it keeps the program alive).
   */
  mapAsync<Args extends readonly unknown[], R>(
    f: PyFunction<Args, R>,
    args: Iterable<Args>,
    options?: MapAsyncOptions,
  ): Promise<RequestId>;
  /** Every task of a request as `[args, result]`; with `block`, once every task reported. */
  getResults<R = unknown>(
    id: RequestId,
    options?: GetResultsOptions,
  ): Promise<[unknown[], R | null][]>;
  /** The failed tasks of a request as `[args, error]`. */
  getErrors(id: RequestId): Promise<[unknown[], string][]>;
  /** What the tasks of a request printed, with their arguments (task `index` alone, if given). */
  getLogs(
    id: RequestId,
    index?: number,
  ): Promise<{ index: number; args: unknown[]; log: string }[]>;
  /**
   * A live web page of the store's requests (see `dashboard` in the module's functions); its
   * buttons act on this instance's cluster. Close it when done.
   */
  dashboard(options?: DashboardOptions): Promise<Dashboard>;
  /** A request's counts and its array tasks' states on the cluster. */
  status(id: RequestId): Promise<RequestStatus>;
  /** Cancels a request's job. */
  cancel(id: RequestId): Promise<JobRef>;
  /** Stores the reports its workers printed to their output that the server never received. */
  recover(id: RequestId): Promise<RecoverOutcome>;
  /** Every request in the store, oldest first, with its counts. */
  requests(): Promise<RequestSummary[]>;
  /**
   * What detached requests left on the cluster under `sshDir`; those of this store whose
   * results are all home are removed (with `force`, every one listed).
   */
  cleanup(options?: CleanupOptions): Promise<StagedRequest[]>;
  /**
   * A server for the store, for workers whose map's server went away (the original's
   * "Restarting The Server"). Close it when their job is done.
   */
  serve(options?: ServeOptions): Promise<SheepdogServer>;
  /** Closes what this instance opened (servers, default store and clusters); a second close is harmless. */
  close(options?: CloseOptions): Promise<void>;
}

const backendKeys = {
  store: ["dbfile"],
  cluster: connectionKeys.filter((key) => key !== "dbfile"),
} as const;

/** Refuses settings that configure a default the given value replaces. */
function checkExclusive(options: SheepdogOptions): void {
  for (const value of ["store", "cluster"] as const) {
    if (options[value] === undefined) continue;
    for (const key of backendKeys[value]) {
      if (options[key] !== undefined) {
        throw new SheepdogError(
          "CONFIG_INVALID",
          source,
          `"${key}" configures the default ${value}, but a ${value} was given as a value. Remove "${key}", or the ${value}.`,
        );
      }
    }
  }
}

/** A store is a value only if it has the methods core calls. */
function checkStore(store: Store): void {
  const needed = [
    "createRequest",
    "getRequest",
    "counts",
    "getResults",
    "getErrors",
    "putError",
    "unreported",
    "updateMeta",
    "listRequests",
    "close",
  ] as const;
  const missing = needed.filter(
    (name) => typeof (store as unknown as Record<string, unknown>)[name] !== "function",
  );
  if (missing.length > 0) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `The store given has no ${missing.join(", ")}. Pass a Store from @sheepdog/contracts (sqliteStore, memoryStore, or your own).`,
    );
  }
}

/** A cluster is a value only if its scheduler and remote have the methods core calls. */
function checkCluster(cluster: Cluster): void {
  const scheduler = cluster?.scheduler as unknown as Record<string, unknown> | undefined;
  const missing = ["name", "submit", "status", "cancel"].filter((name) =>
    name === "name" ? typeof scheduler?.name !== "string" : typeof scheduler?.[name] !== "function",
  );
  if (missing.length > 0 || typeof cluster?.remote?.name !== "string") {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `The cluster given needs a scheduler with name, submit, status and cancel, and a remote with a name${missing.length > 0 ? ` (its scheduler has no ${missing.join(", ")})` : ""}. Pass { scheduler, remote }, e.g. { scheduler: slurm(remote), remote }.`,
    );
  }
}

/**
 * The one place a Sheepdog is put together: the backends given as values, the rest built from
 * the configuration, each opened on first use and closed by `close()` if this instance opened
 * it.
 */
export function instanceContext(
  runtime: Runtime,
  config: ResolvedConfig,
  values: { store?: Store | undefined; cluster?: Cluster | undefined },
): () => Promise<Context> {
  let context: Promise<Context> | undefined;
  const { store, cluster } = values;
  return () => {
    runtime.checkOpen();
    context ??= (async (): Promise<Context> => ({
      runtime,
      store: store ?? (await runtime.defaultStore(config.dbfile)),
      storeKey: store ? `store:${storeIds.next()}` : dbfileKey(config.dbfile),
      storeHint: store ? "" : `, { dbfile: ${JSON.stringify(config.dbfile)} }`,
      connection: cluster ? {} : { host: config.host },
      listenHost: (cluster ? runsOnThisMachine(cluster) : defaultRunsHere(config))
        ? "127.0.0.1"
        : "0.0.0.0",
      openCluster: async (scheduler) => {
        if (cluster) return { cluster, release: async () => {} };
        if (!config.host) throw missingHost();
        return openDefaultCluster(
          config,
          () => runtime.localScheduler(config.concurrency),
          scheduler,
        );
      },
    }))();
    context.catch(() => {
      context = undefined;
    });
    return context;
  };
}

const storeIds = (() => {
  let next = 0;
  return { next: () => ++next };
})();

/**
 * A Sheepdog over the store and cluster you give, or the defaults built from the
 * configuration (a SQLite file; SSH and the head node's scheduler, or local processes with
 * `host: "local"`), loaded only when used.
 *
 * @example Your own store, this machine's processes:
 * ```ts
 * import { createSheepdog, py } from "@sheepdog/core";
 * import { memoryStore } from "@sheepdog/contracts/testing";
 * import { localRemote, localScheduler } from "@sheepdog/local";
 *
 * await using sheepdog = createSheepdog({
 *   store: memoryStore(),
 *   cluster: { scheduler: localScheduler(), remote: localRemote() },
 * });
 * await sheepdog.map(py`def f(x): return x * 2`, [[1], [2]]); // [2, 4]
 * ```
 */
export function createSheepdog(options: SheepdogOptions = {}): Sheepdog {
  const { store, cluster, handleSignals = false, ...settings } = options;
  checkExclusive(options);
  if (store !== undefined) checkStore(store);
  if (cluster !== undefined) checkCluster(cluster);
  const { config } = resolveConfig(settings, process.env, undefined, { requireHost: false });
  const runtime = new Runtime({ handleSignals });
  return sheepdogOn(instanceContext(runtime, config, { store, cluster }), config, runtime);
}

/** The methods of a Sheepdog, over the context `context` gives. */
export function sheepdogOn(
  context: () => Promise<Context>,
  config: ResolvedConfig,
  runtime: Runtime,
): Sheepdog {
  const close = (options?: CloseOptions) => runtime.close(options);
  return {
    map: async (f, args, options = {}) => maps.mapValues(await context(), config, f, args, options),
    mapSettled: async (f, args, options = {}) =>
      maps.mapSettled(await context(), config, f, args, options),
    mapAsync: async (f, args, options = {}) =>
      maps.mapAsync(await context(), config, f, args, options),
    mapStream: (f, args, options = {}) =>
      streams.mapStream(
        async () => ({ context: await context(), settings: config }),
        f,
        args,
        options,
      ),
    getResults: async (id, options = {}) => ops.getResults(await context(), id, options),
    getErrors: async (id) => ops.getErrors(await context(), id),
    getLogs: async (id, index) => ops.getLogs(await context(), id, index),
    dashboard: async (options = {}) => {
      const own = await context();
      return openDashboard(
        own,
        async () => own,
        (target, id) => maps.retryFailedTasks(target, config, id),
        options,
      );
    },
    status: async (id) => ops.requestStatus(await context(), id),
    cancel: async (id) => ops.cancelRequest(await context(), id),
    recover: async (id) => ops.recover(await context(), id),
    requests: async () => (await context()).store.listRequests(),
    cleanup: async (options = {}) => cleanupStaged(await context(), config.sshDir, options),
    serve: async (options = {}) => serveOn(await context(), config, options),
    close,
    [Symbol.asyncDispose]: () => close(),
  };
}

/** A server for the context's store; see {@link serveRequest}. */
export function serveOn(
  context: Context,
  config: ResolvedConfig,
  options: ServeOptions,
): Promise<SheepdogServer> {
  return serveRequest(context, config, options);
}
