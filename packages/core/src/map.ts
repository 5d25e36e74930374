import { randomBytes } from "node:crypto";
import { lookup, lookupService } from "node:dns/promises";
import { hostname } from "node:os";
import type { FunctionSource, JobRef } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type { PyFunction } from "@sheepdog/serialise";
import { asTuple, decode, encode, functionSource, isPyFunction } from "@sheepdog/serialise";
import type { SheepdogServer } from "@sheepdog/server";
import { workerProgram } from "@sheepdog/worker-py";
import type { SheepdogConfig } from "./config.js";
import { memGrabBytes, resolveConfig } from "./config.js";
import { encodeNamespace } from "./internal/namespace.js";
import { progressPrinter } from "./internal/progress.js";
import { connectionOf } from "./internal/request-job.js";
import { clusterFor, serverForConfig, storeFor } from "./internal/resources.js";
import type { MapProgress } from "./internal/wait.js";
import { waitForRequest } from "./internal/wait.js";

export type { MapProgress };

/** Options of {@link mapAsync}. */
export interface MapAsyncOptions {
  /**
   * Values and `py` functions the function can use by name: the seed's namespace. Values are
   * pickled; functions are defined in the function's globals.
   */
  ns?: Record<string, unknown>;
  /** Aborting before the job is queued rejects with `ABORTED` and submits nothing. */
  signal?: AbortSignal;
}

/** Options of {@link map}. */
export interface MapOptions extends MapAsyncOptions {
  /** Progress on stderr, and a pointer to the errors at the end. @default false */
  verbose?: boolean;
  /** Called as results arrive (and at least every second). */
  onProgress?: (progress: MapProgress) => void;
  /** Aborting cancels the array job (qdel) and rejects with `ABORTED`, unless `keepJob`. */
  keepJob?: boolean;
}

const source = "core";

/**
 * Runs `f` once per argument tuple on the cluster and resolves with the results in argument
 * order, `null` where that task failed ({@link getErrors} says why).
 *
 * @example
 * ```ts
 * const add = py`
 * def f(a, b):
 *     return a + b
 * `;
 * await map(add, [[1, 1], [1, 2], [2, 2]], { host: "fear" }); // [2, 3, 4]
 * ```
 */
export async function map<R = unknown>(
  f: PyFunction,
  args: Iterable<readonly unknown[]>,
  config: SheepdogConfig,
  options: MapOptions = {},
): Promise<(R | null)[]> {
  const submitted = await submit(f, args, config, options);
  const { store, request, tasks, job, cluster, server } = submitted;
  const printer = options.verbose ? progressPrinter() : undefined;
  let final: MapProgress | undefined;
  try {
    final = await waitForRequest({
      store,
      request,
      tasks,
      chunkSize: submitted.chunkSize,
      ...(job && cluster && { job, scheduler: cluster.scheduler }),
      ...(options.signal && { signal: options.signal }),
      subscribe: (wake) =>
        server.onReport((event) => {
          if (event.request === request) wake();
        }),
      onProgress: (progress) => {
        printer?.update(progress);
        options.onProgress?.(progress);
      },
    });
  } catch (error) {
    if (job && cluster && !options.keepJob) {
      await cluster.scheduler.cancel(job).catch(() => {});
    }
    throw error;
  } finally {
    await cluster?.release();
    await server.close();
  }
  printer?.done(final);
  if (options.verbose && final.errors > 0) {
    process.stderr.write(
      `[sheepdog] ${final.errors} of ${final.tasks} tasks failed. See why with getErrors(${request}, { dbfile: ${JSON.stringify(submitted.dbfile)} }).\n`,
    );
  }
  const rows = await store.getResults(request);
  return rows.map((row) => (row.result === null ? null : decodeResult<R>(row.result)));
}

/**
 * Submits the job and resolves with its request id as soon as it is queued; fetch results
 * later with {@link getResults}. The server keeps serving the job until {@link shutdown} or the
 * end of this process.
 */
export async function mapAsync(
  f: PyFunction,
  args: Iterable<readonly unknown[]>,
  config: SheepdogConfig,
  options: MapAsyncOptions = {},
): Promise<number> {
  const { request, cluster } = await submit(f, args, config, options);
  await cluster?.release();
  return request;
}

function decodeResult<R>(bytes: Uint8Array): R | null {
  try {
    return decode(bytes) as R;
  } catch {
    return null;
  }
}

function checkArgs(args: Iterable<readonly unknown[]>): (readonly unknown[])[] {
  if (args === null || typeof args !== "object" || !(Symbol.iterator in args)) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      "args must be an array of argument tuples, like [[1, 2], [3, 4]].",
    );
  }
  const list = Array.isArray(args) ? (args as (readonly unknown[])[]) : [...args];
  for (let i = 0; i < list.length; i++) {
    if (!Array.isArray(list[i])) {
      throw new SheepdogError(
        "INVALID_INPUT",
        source,
        `args[${i}] must be an array of positional arguments; wrap a single argument as [x].`,
      );
    }
  }
  return list;
}

let fqdn: Promise<string> | undefined;
/** This machine's fully qualified name, as Python's socket.getfqdn() finds it. */
function localFqdn(): Promise<string> {
  fqdn ??= (async () => {
    const name = hostname();
    if (name.includes(".")) return name;
    try {
      const { address } = await lookup(name);
      const { hostname: full } = await lookupService(address, 0);
      return full.includes(".") ? full : name;
    } catch {
      return name;
    }
  })();
  return fqdn;
}

async function submit(
  f: PyFunction,
  args: Iterable<readonly unknown[]>,
  userConfig: SheepdogConfig,
  options: MapAsyncOptions,
) {
  const { config } = resolveConfig(userConfig);
  if (!isPyFunction(f)) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      "The function must be Python: py`def f(x): ...` or pyFile(path, name) from @sheepdog/core.",
    );
  }
  const list = checkArgs(args);
  const func: FunctionSource = functionSource(f);
  const protocol = config.pickleProtocol;
  const ns = encodeNamespace(options.ns ?? {}, protocol);
  if (options.signal?.aborted) throw new SheepdogError("ABORTED", source, "The map was aborted.");

  const store = await storeFor(config.dbfile);
  const cluster = list.length > 0 ? await clusterFor(config) : undefined;
  let job: JobRef | undefined;
  let server: SheepdogServer | undefined;
  try {
    const slots = await cluster?.scheduler.slots?.().catch(() => undefined);
    const chunkSize = config.chunkSize ?? autoChunkSize(list.length, slots);
    const { id: request, token } = await store.createRequest({
      func: new TextEncoder().encode(JSON.stringify(func)),
      ns,
      args: (function* () {
        for (const item of list) yield encode(asTuple(Array.from(item)), { protocol });
      })(),
      meta: { connection: connectionOf(config), chunkSize, pickleProtocol: protocol },
    });
    server = await serverForConfig(config, store);
    const base = { store, request, tasks: list.length, chunkSize, server, dbfile: config.dbfile };
    if (!cluster) return { ...base, job: undefined, cluster: undefined };

    const localhost =
      config.localhost ?? (config.host === "local" ? "127.0.0.1" : await localFqdn());
    const memoryLimitBytes = memGrabBytes(config.geOpts);
    const program = workerProgram({
      url: `http://${localhost}:${server.port}`,
      token,
      request,
      pickleProtocol: protocol,
      retryWindowSeconds: config.retryWindowSeconds,
      ...(memoryLimitBytes !== undefined && { memoryLimitBytes }),
    });
    if (options.signal?.aborted) throw new SheepdogError("ABORTED", source, "The map was aborted.");
    job = await cluster.scheduler.submit({
      name: `sheepdog_${request}_${randomBytes(4).toString("hex")}`,
      tasks: Math.ceil(list.length / chunkSize),
      program,
      shell: config.shell,
      options: config.host === "local" ? [] : config.geOpts,
      directory: config.sshDir,
    });
    await store.updateMeta(request, { job, port: server.port });
    return { ...base, job, cluster };
  } catch (error) {
    await cluster?.release();
    await server?.close();
    throw error;
  }
}

/**
 * Argument tuples per array task when the user set none: about two tasks per slot, so that
 * small calls share a task (a task's dispatch costs the cluster about a second) while the
 * slots stay busy until the end.
 */
export function autoChunkSize(tasks: number, slots: number | undefined): number {
  if (slots === undefined || !(slots >= 1)) return 1;
  return Math.max(1, Math.ceil(tasks / (slots * 2)));
}
