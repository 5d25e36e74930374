import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { JobRef, RequestId, RequestSummary } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type { Dashboard } from "@sheepdog/dashboard";
import type { PyFunction } from "@sheepdog/serialise";
import type { SheepdogServer } from "@sheepdog/server";
import type { ResolvedConfig, SheepdogConfig } from "./config.js";
import { resolveConfig } from "./config.js";
import { cleanupStaged } from "./internal/cleanup.js";
import type { CloseOptions, Context } from "./internal/context.js";
import { Runtime } from "./internal/context.js";
import { openDashboard } from "./internal/dashboard.js";
import { isPostgresUrl } from "./internal/defaults/store.js";
import * as maps from "./internal/maps.js";
import * as ops from "./internal/request-ops.js";
import { source } from "./internal/source.js";
import * as streams from "./internal/stream.js";
import type { ServeOptions as InstanceServeOptions } from "./sheepdog.js";
import { instanceContext, serveOn } from "./sheepdog.js";
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

/*
 * The default instance: the original's module-level functions, each taking the configuration
 * of its call. Its stores (one per dbfile), servers (one per port) and local schedulers are
 * shared by every call until `shutdown()`, and it handles Ctrl-C and SIGTERM while a map runs.
 */

let runtime = new Runtime({ handleSignals: true });

function contextFor(config: ResolvedConfig): Promise<Context> {
  return instanceContext(runtime, config, {})();
}

/**
 * Settings for working on an existing request: the dbfile it is in, and how to reach its
 * cluster. Without `host` (or `SHEEPDOG_HOST`), the host the request was submitted to is used,
 * by name only: SSH settings always come from this configuration and the environment, never
 * from the dbfile.
 */
export type RequestConfig = Partial<SheepdogConfig>;

/** A host name as stored with a request: a plain name, or it is refused. */
function storedHost(value: unknown, id: RequestId): string {
  if (typeof value === "string" && /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(value)) return value;
  throw new SheepdogError(
    "CONFIG_INVALID",
    source,
    `Request ${id} has no usable host stored with it. Give "host" (or SHEEPDOG_HOST): the head node it was submitted to.`,
  );
}

/**
 * The configuration of work on requests already stored: a dbfile that is a file MUST exist, so
 * that a lookup with a mistyped dbfile says so instead of creating an empty database.
 */
function existingDbfileConfig(config: RequestConfig): ResolvedConfig {
  const { config: resolved } = resolveConfig(config, process.env, undefined, {
    requireHost: false,
  });
  const { dbfile } = resolved;
  if (isPostgresUrl(dbfile) || dbfile === ":memory:" || existsSync(dbfile)) return resolved;
  throw new SheepdogError(
    "CONFIG_INVALID",
    source,
    `There is no dbfile ${resolve(dbfile)}, so it holds no requests (it was not created). Run a map first, or check the dbfile (--dbfile, SHEEPDOG_DBFILE).`,
  );
}

/** The context of a request: its dbfile, and its cluster as the caller configures it. */
async function requestContext(id: RequestId, config: RequestConfig): Promise<Context> {
  const resolved = existingDbfileConfig(config);
  const context = await contextFor(resolved);
  if (resolved.host) return context;
  const { meta } = await context.store.getRequest(id);
  const connection = meta.connection as { host?: unknown } | undefined;
  return contextFor({ ...resolved, host: storedHost(connection?.host, id) });
}

/** The context of a dbfile alone, for work that reads the store and needs no cluster. */
function storeContext(options: { dbfile?: string | undefined }): Promise<Context> {
  const { dbfile } = options;
  return contextFor(existingDbfileConfig(dbfile !== undefined ? { dbfile } : {}));
}

/**
 * Runs `f` once per argument tuple on the cluster and resolves with the results in argument
 * order, `null` where that task failed ({@link getErrors} says why; `throwOnError` rejects
 * instead, and {@link mapSettled} tells each outcome). A task that dies without reporting
 * (killed, over a limit, refused by its node) becomes an error carrying the scheduler's
 * account of it, so `map` never waits for ever; with `retries`, failed arguments run again as
 * new array jobs of only those arguments. Ctrl-C or SIGTERM cancels the job.
 *
 * @example
 * ```ts
 * const add = py<[number, number], number>`
 * def f(a, b):
 *     return a + b
 * `;
 * await map(add, [[1, 1], [1, 2], [2, 2]], { host: "fear" }); // [2, 3, 4]
 * ```
 */
export async function map<Args extends readonly unknown[], R>(
  f: PyFunction<Args, R>,
  args: Iterable<Args>,
  config: SheepdogConfig,
  options: MapOptions = {},
): Promise<(R | null)[]> {
  const resolved = resolveConfig(config).config;
  return maps.mapValues(await contextFor(resolved), resolved, f, args, options);
}

/** As {@link map}, resolving with each task's value or error, and the request id. */
export async function mapSettled<Args extends readonly unknown[], R>(
  f: PyFunction<Args, R>,
  args: Iterable<Args>,
  config: SheepdogConfig,
  options: MapOptions = {},
): Promise<MapSettled<R>> {
  const resolved = resolveConfig(config).config;
  return maps.mapSettled(await contextFor(resolved), resolved, f, args, options);
}

/**
 * Runs `f` once per argument tuple on the cluster and yields each task's outcome as it arrives:
 * `{ index, ok: true, value }` or `{ index, ok: false, error }`, in completion order, or in
 * argument order with `order: "arguments"`. `args` may be any iterable or async iterable (a
 * file read line by line): it is read `windowSize` tuples at a time (200,000 by default), each
 * window submitted as its own request (its id in the dbfile, as any request's), at most four at
 * once, and the next window is read only once the outcomes of the oldest are taken. Leaving the
 * loop (`break`, `return`, an exception), aborting `signal` or Ctrl-C cancels the jobs of the
 * windows in flight and reads no more arguments; a failure of the map itself (configuration,
 * SSH, submission) rejects the iteration with its `SheepdogError`. Nothing runs until the
 * iteration starts.
 *
 * @example
 * ```ts
 * const square = py<[number], number>`
 * def f(x):
 *     return x * x
 * `;
 * async function* numbers() {
 *   for (let x = 0; x < 1_000_000; x++) yield [x] as [number];
 * }
 * for await (const outcome of mapStream(square, numbers(), { host: "fear" })) {
 *   if (outcome.ok) console.log(outcome.index, outcome.value);
 *   else console.error(outcome.index, outcome.error);
 * }
 * ```
 */
export function mapStream<Args extends readonly unknown[], R>(
  f: PyFunction<Args, R>,
  args: Iterable<Args> | AsyncIterable<Args>,
  config?: SheepdogConfig,
  options: MapStreamOptions = {},
): AsyncGenerator<IndexedSettled<R>, void, undefined> {
  return streams.mapStream<R>(
    async () => {
      const settings = resolveConfig(config).config;
      return { context: await contextFor(settings), settings };
    },
    f,
    args,
    options,
  );
}

/**
 * Submits the job and resolves with its request id as soon as it is queued; fetch results
 * with {@link getResults}. The server serves the job's workers until every task has reported
 * (then it closes, so a program ends by itself) or {@link shutdown}. Failed arguments are not
 * run again (`retries` is for {@link map}).
 */
export async function mapAsync<Args extends readonly unknown[], R>(
  f: PyFunction<Args, R>,
  args: Iterable<Args>,
  config: SheepdogConfig,
  options: MapAsyncOptions = {},
): Promise<RequestId> {
  const resolved = resolveConfig(config).config;
  return maps.mapAsync(await contextFor(resolved), resolved, f, args, options);
}

/**
 * Every task of a request as `[args, result]`, in argument order; `result` is `null` for a
 * task that failed or has not reported yet. With `block`, waits until every task has
 * (asking the cluster about tasks that die without reporting). Reads only: a dbfile that
 * does not exist is `CONFIG_INVALID`, never created (as for every function on existing requests).
 *
 * @example
 * ```ts
 * const id = await mapAsync(f, [[1, 2]], { host: "fear" });
 * const rows = await getResults(id, { block: true }); // [[[1, 2], 3]]
 * ```
 */
export async function getResults<R = unknown>(
  id: RequestId,
  options: GetResultsOptions & RequestConfig = {},
): Promise<[unknown[], R | null][]> {
  const { block, verbose, signal, ...config } = options;
  ops.checkId(id);
  const context = block ? await requestContext(id, config) : await storeContext(config);
  return ops.getResults<R>(context, id, {
    ...(block !== undefined && { block }),
    ...(verbose !== undefined && { verbose }),
    ...(signal !== undefined && { signal }),
  });
}

/**
 * The failed tasks of a request as `[args, error]`, in argument order; `error` is the Python
 * traceback, or the scheduler's account of how a task died without reporting.
 */
export async function getErrors(
  id: RequestId,
  options: { dbfile?: string } = {},
): Promise<[unknown[], string][]> {
  ops.checkId(id);
  return ops.getErrors(await storeContext(options), id);
}

/**
 * What the tasks of a request printed (stdout and stderr, kept with each report, the tail of a
 * long one with the cut marked), with their arguments: every task that printed something, or
 * task `index` alone.
 */
export async function getLogs(
  id: RequestId,
  options: { dbfile?: string; index?: number } = {},
): Promise<{ index: number; args: unknown[]; log: string }[]> {
  ops.checkId(id);
  const { index, ...config } = options;
  return ops.getLogs(await storeContext(config), id, index);
}

/**
 * Every request in a dbfile, oldest first, with its counts; `meta.cancelled` (`{ at, reason }`)
 * marks one whose job was cancelled or whose map was interrupted. A dbfile that does not exist
 * is `CONFIG_INVALID`.
 */
export async function listRequests(config: RequestConfig = {}): Promise<RequestSummary[]> {
  return (await storeContext(config)).store.listRequests();
}

/** The counts of a request and, from its cluster, the state of each of its array tasks. */
export async function requestStatus(
  id: RequestId,
  config: RequestConfig = {},
): Promise<RequestStatus> {
  ops.checkId(id);
  return ops.requestStatus(await requestContext(id, config), id);
}

/** Cancels the array job of a request. Tasks already finished keep their reports. */
export async function cancelRequest(id: RequestId, config: RequestConfig = {}): Promise<JobRef> {
  ops.checkId(id);
  return ops.cancelRequest(await requestContext(id, config), id);
}

/**
 * Reads the reports the workers printed to their job output files (over SSH) and stores those
 * the server never received: results survive a server that never came back.
 */
export async function recover(id: RequestId, config: RequestConfig = {}): Promise<RecoverOutcome> {
  ops.checkId(id);
  return ops.recover(await requestContext(id, config), id);
}

/**
 * Options of {@link serve}: where to listen, and for `request`, how to log in to its cluster
 * when its workers go through a relay (the host is the request's own).
 */
export interface ServeOptions extends InstanceServeOptions, Omit<RequestConfig, "port"> {
  /** @default "./sheepdog.sqlite" (or SHEEPDOG_DBFILE) */
  dbfile?: string;
}

/**
 * Starts a server for a dbfile, as the original's "Restarting The Server": the workers of
 * queued and running tasks report to it. Close it when the job is done.
 */
export async function serve(options: ServeOptions = {}): Promise<SheepdogServer> {
  const { port, listen, request, ...settings } = options;
  const { config } = resolveConfig(settings, process.env, undefined, { requireHost: false });
  const context =
    request === undefined ? await contextFor(config) : await requestContext(request, settings);
  return serveOn(context, config, { port, listen, request });
}

/**
 * Lists what detached requests left on the cluster (`sshDir` on `host`) and removes what
 * nothing needs any more: the directories of this dbfile's requests whose results are all home
 * (their spool is collected first). With `force`, every directory listed goes.
 */
export async function cleanup(
  options: CleanupOptions & RequestConfig = {},
): Promise<StagedRequest[]> {
  const { dryRun, force, ...config } = options;
  const resolved = existingDbfileConfig(config);
  return cleanupStaged(await contextFor(resolved), resolved.sshDir, {
    ...(dryRun !== undefined && { dryRun }),
    ...(force !== undefined && { force }),
  });
}

/**
 * A web page of every request in a dbfile, updating live: progress, the tasks of a request,
 * errors grouped with their tracebacks, dead tasks with their cause, run times and logs. Its
 * address carries a random token (`dashboard.url`); it listens on 127.0.0.1 unless
 * `options.host` says otherwise, on `options.port` (or a free one). Its cancel button cancels a request's job and its retry button runs a
 * request's failed tasks again as a new request, each on the request's cluster (reached with
 * this configuration; without `host`, the one it was submitted to). Close it when done.
 */
export async function dashboard(
  config: RequestConfig = {},
  options: DashboardOptions = {},
): Promise<Dashboard> {
  const resolved = existingDbfileConfig(config);
  return openDashboard(
    await contextFor(resolved),
    (id) => requestContext(id, config),
    (context, id) => maps.retryFailedTasks(context, resolved, id),
    { title: resolved.dbfile, ...options },
  );
}

/** Options of {@link shutdown}. */
export type ShutdownOptions = CloseOptions;

/**
 * Closes every server, store and local scheduler the module-level functions opened. Maps
 * still running lose their server; `mapAsync`'s servers close by themselves once every task
 * has reported, so most programs never need this.
 */
export async function shutdown(options: ShutdownOptions = {}): Promise<void> {
  const closing = runtime;
  runtime = new Runtime({ handleSignals: true });
  await closing.close(options);
}
