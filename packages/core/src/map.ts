import { randomBytes } from "node:crypto";
import { lookup, lookupService } from "node:dns/promises";
import { hostname } from "node:os";
import type { FunctionSource, JobRef, Store } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type { PyFunction } from "@sheepdog/serialise";
import { asTuple, encode, functionSource, isPyFunction } from "@sheepdog/serialise";
import type { SheepdogServer } from "@sheepdog/server";
import { workerProgram } from "@sheepdog/worker-py";
import type { ResolvedConfig, SheepdogConfig } from "./config.js";
import { memGrabBytes, resolveConfig } from "./config.js";
import { interruptible } from "./internal/interrupt.js";
import { encodeNamespace } from "./internal/namespace.js";
import { progressPrinter } from "./internal/progress.js";
import { connectionOf } from "./internal/request-job.js";
import type { Cluster } from "./internal/resources.js";
import { clusterFor, serverForConfig, storeFor } from "./internal/resources.js";
import { collectResults } from "./internal/result-check.js";
import type { TaskLayout } from "./internal/task-layout.js";
import { retryChunks, taskCount } from "./internal/task-layout.js";
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

/** What an attempt of a map runs with; see {@link MapOptions.retryWith}. */
export interface AttemptOptions {
  /** The scheduler options of the attempt (the configuration's `geOpts` at first). */
  geOpts: string[];
}

/** Options of {@link map}. */
export interface MapOptions extends MapAsyncOptions {
  /** Progress on stderr, and a pointer to the errors at the end. @default false */
  verbose?: boolean;
  /** Called as results arrive (and at least every second). */
  onProgress?: (progress: MapProgress) => void;
  /**
   * Aborting `signal` (or Ctrl-C / SIGTERM, in a program that does not handle those itself)
   * cancels the array job (qdel), closes the server and the SSH connection, and rejects with
   * `ABORTED`; with `keepJob`, the job is left to run.
   */
  keepJob?: boolean;
  /**
   * With `retries` (configuration): what each retry runs with. Called before attempt `attempt`
   * (2 for the first retry) with what the previous attempt ran with; returns what to change,
   * or nothing to keep it. The options returned are checked as `geOpts` in the configuration.
   *
   * @example More memory each time:
   * ```ts
   * await map(f, args, { host: "fear", retries: 2, geOpts: ["-l h_vmem=2G"] }, {
   *   retryWith: (attempt) => ({ geOpts: [`-l h_vmem=${attempt * 2}G`] }),
   * });
   * ```
   */
  retryWith?: (
    attempt: number,
    previous: AttemptOptions,
  ) => Partial<AttemptOptions> | undefined | Promise<Partial<AttemptOptions> | undefined>;
}

const source = "core";

function abortError(signal: AbortSignal | undefined): SheepdogError {
  const reason: unknown = signal?.reason;
  return SheepdogError.isInstance(reason) && reason.code === "ABORTED"
    ? reason
    : new SheepdogError("ABORTED", source, "The map was aborted.");
}

/**
 * Runs `f` once per argument tuple on the cluster and resolves with the results in argument
 * order, `null` where that task failed ({@link getErrors} says why). A task that dies without
 * reporting (killed, over a limit, refused by its node) becomes an error carrying the
 * scheduler's account of it, so `map` never waits for ever; with `retries`, failed arguments
 * run again as new array jobs of only those arguments.
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
  return interruptible(async (interrupt) => {
    const signal = options.signal ? AbortSignal.any([options.signal, interrupt]) : interrupt;
    const submitted = await submit(f, args, config, { ...options, signal });
    return waitAndRetry<R>(submitted, options, signal);
  });
}

async function waitAndRetry<R>(
  submitted: Submitted,
  options: MapOptions,
  signal: AbortSignal,
): Promise<(R | null)[]> {
  const { store, request, tasks, cluster, server, config } = submitted;
  const printer = options.verbose ? progressPrinter() : undefined;
  let job = submitted.job;
  let final: MapProgress;
  /** The errors of the earlier attempts of each argument that was run again. */
  const history = new Map<number, string[]>();
  try {
    let attempt = 1;
    let taskOffset = 0;
    let layout: TaskLayout = { tasks, chunkSize: submitted.chunkSize, retryTasks: [] };
    let geOpts = config.geOpts;
    for (;;) {
      const died = new Set<number>();
      final = await waitForRequest({
        store,
        request,
        tasks,
        layout,
        taskOffset,
        attempt,
        ...(job && cluster && { job, scheduler: cluster.scheduler }),
        signal,
        subscribe: (wake) =>
          server.onReport((event) => {
            if (event.request === request) wake();
          }),
        onDied: (indices) => {
          for (const index of indices) died.add(index);
        },
        onProgress: (progress) => {
          printer?.update(progress);
          options.onProgress?.(progress);
        },
      });
      if (!cluster || attempt > config.retries || final.errors === 0) break;
      const failed = (await store.getErrors(request)).filter(
        (row) => config.retryOn === "any" || died.has(row.index) || isMemoryError(row.error),
      );
      if (failed.length === 0) break;
      attempt += 1;
      const changed = await options.retryWith?.(attempt, { geOpts: [...geOpts] });
      if (changed?.geOpts !== undefined) {
        geOpts = resolveConfig({ host: config.host, geOpts: changed.geOpts }, {}).config.geOpts;
      }
      const indices = failed.map((row) => row.index);
      for (const row of failed) {
        const errors = history.get(row.index) ?? [];
        errors.push(row.error);
        history.set(row.index, errors);
      }
      const slots = await cluster.scheduler.slots?.().catch(() => undefined);
      const chunks = retryChunks(indices, config.chunkSize ?? autoChunkSize(indices.length, slots));
      taskOffset = taskCount(layout);
      layout = { ...layout, retryTasks: [...layout.retryTasks, ...chunks] };
      // The server serves the new tasks from the meta, so it is written before the job runs.
      await store.updateMeta(request, { retryTasks: layout.retryTasks });
      if (!store.resetTasks) {
        throw new SheepdogError(
          "CONFIG_INVALID",
          source,
          "retries need a store with resetTasks (store-sqlite has it); set retries to 0 for this store.",
        );
      }
      await store.resetTasks(request, indices);
      if (signal.aborted) throw abortError(signal);
      job = await submitJob(submitted, {
        name: `${submitted.name}_r${attempt}`,
        tasks: chunks.length,
        geOpts,
        taskOffset,
      });
      await store.updateMeta(request, { job, taskOffset, attempt });
    }
    if (history.size > 0) await writeAttemptHistory(store, request, history);
  } catch (error) {
    if (job && cluster && !options.keepJob) {
      await cluster.scheduler.cancel(job).catch(() => {});
    }
    throw SheepdogError.isInstance(error) && error.code === "ABORTED" ? abortError(signal) : error;
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
  return (await collectResults(store, request, tasks)) as (R | null)[];
}

/** Whether a worker's error is Python's `MemoryError` (the last line of its traceback). */
function isMemoryError(text: string): boolean {
  const last = text.trimEnd().split("\n").pop() ?? "";
  return /^MemoryError\b/.test(last);
}

/**
 * Rewrites the error of each argument that was run again and still failed, so that it lists
 * every attempt's error in order, the last attempt's last.
 */
async function writeAttemptHistory(
  store: Store,
  request: number,
  history: Map<number, string[]>,
): Promise<void> {
  const rewritten: { index: number; text: string }[] = [];
  for (const row of await store.getErrors(request)) {
    const earlier = history.get(row.index);
    if (!earlier) continue;
    const all = [...earlier, row.error];
    const attempts = all
      .map((error, i) => `Attempt ${i + 1} of ${all.length}: ${error.trimEnd()}`)
      .join("\n\n");
    rewritten.push({
      index: row.index,
      text: `Failed on each of ${all.length} attempts.\n\n${attempts}\n`,
    });
  }
  if (rewritten.length === 0 || !store.resetTasks) return;
  await store.resetTasks(
    request,
    rewritten.map((r) => r.index),
  );
  for (const { index, text } of rewritten) await store.putError(request, index, text);
}

/**
 * Submits the job and resolves with its request id as soon as it is queued; fetch results
 * later with {@link getResults}. The server keeps serving the job until {@link shutdown} or the
 * end of this process. Failed arguments are not run again (`retries` is for {@link map}).
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

/** A request created, its server started and (with arguments) its first job submitted. */
interface Submitted {
  store: Store;
  request: number;
  token: string;
  tasks: number;
  chunkSize: number;
  server: SheepdogServer;
  dbfile: string;
  config: ResolvedConfig;
  /** The first attempt's job name; a retry's adds `_r<attempt>`. */
  name: string;
  job: JobRef | undefined;
  cluster: Cluster | undefined;
  /** The server's URL for the workers. */
  url: string;
}

async function submit(
  f: PyFunction,
  args: Iterable<readonly unknown[]>,
  userConfig: SheepdogConfig,
  options: MapAsyncOptions,
): Promise<Submitted> {
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
  if (options.signal?.aborted) throw abortError(options.signal);

  const store = await storeFor(config.dbfile);
  const cluster = list.length > 0 ? await clusterFor(config) : undefined;
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
    const localhost =
      config.localhost ?? (config.host === "local" ? "127.0.0.1" : await localFqdn());
    const submitted: Submitted = {
      store,
      request,
      token,
      tasks: list.length,
      chunkSize,
      server,
      dbfile: config.dbfile,
      config,
      name: `sheepdog_${request}_${randomBytes(4).toString("hex")}`,
      job: undefined,
      cluster,
      url: `http://${localhost}:${server.port}`,
    };
    if (!cluster) return submitted;
    if (options.signal?.aborted) throw abortError(options.signal);
    submitted.job = await submitJob(submitted, {
      name: submitted.name,
      tasks: Math.ceil(list.length / chunkSize),
      geOpts: config.geOpts,
      taskOffset: 0,
    });
    await store.updateMeta(request, { job: submitted.job, port: server.port });
    return submitted;
  } catch (error) {
    await cluster?.release();
    await server?.close();
    throw error;
  }
}

/** Submits one attempt's array job: `tasks` tasks, the request's tasks after `taskOffset`. */
async function submitJob(
  submitted: Submitted,
  attempt: { name: string; tasks: number; geOpts: string[]; taskOffset: number },
): Promise<JobRef> {
  const { config, cluster } = submitted;
  if (!cluster) throw new SheepdogError("INTERNAL", source, "A job needs a cluster.");
  const memoryLimitBytes = memGrabBytes(attempt.geOpts);
  const program = workerProgram({
    url: submitted.url,
    token: submitted.token,
    request: submitted.request,
    pickleProtocol: config.pickleProtocol,
    retryWindowSeconds: config.retryWindowSeconds,
    ...(memoryLimitBytes !== undefined && { memoryLimitBytes }),
    ...(attempt.taskOffset > 0 && { taskOffset: attempt.taskOffset }),
  });
  return cluster.scheduler.submit({
    name: attempt.name,
    tasks: attempt.tasks,
    program,
    shell: config.shell,
    options: config.host === "local" ? [] : attempt.geOpts,
    directory: config.sshDir,
  });
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
