import { randomBytes } from "node:crypto";
import { lookup, lookupService } from "node:dns/promises";
import { hostname } from "node:os";
import type { FunctionSource, JobRef, RequestId } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type { PyFunction } from "@sheepdog/serialise";
import { asTuple, encode, functionSource, isPyFunction } from "@sheepdog/serialise";
import type { SheepdogServer } from "@sheepdog/server";
import { workerProgram } from "@sheepdog/worker-py";
import type { ResolvedRunSettings } from "../config.js";
import type { ClusterLease, Context } from "./context.js";
import { encodeNamespace } from "./namespace.js";
import { source } from "./source.js";

/** What a submission runs with, beyond the function and its arguments. */
export interface SubmitOptions {
  ns?: Record<string, unknown> | undefined;
  signal?: AbortSignal | undefined;
  /** `map` retries: checked against the store before anything is submitted. */
  retries?: number;
}

/** A request created, its server started and (with arguments) its first job submitted. */
export interface Submitted {
  context: Context;
  settings: ResolvedRunSettings;
  request: RequestId;
  token: string;
  tasks: number;
  chunkSize: number;
  server: SheepdogServer;
  /** The first attempt's job name; a retry's adds `_r<attempt>`. */
  name: string;
  job: JobRef | undefined;
  lease: ClusterLease | undefined;
  /** The server's URL for the workers. */
  url: string;
}

export function abortError(signal: AbortSignal | undefined): SheepdogError {
  const reason: unknown = signal?.reason;
  return SheepdogError.isInstance(reason) && reason.code === "ABORTED"
    ? reason
    : new SheepdogError("ABORTED", source, "The map was aborted.");
}

/**
 * Creates the request, starts (or shares) its server and submits its first job. What core
 * needs from the backends is checked before anything is submitted.
 */
export async function submit(
  context: Context,
  settings: ResolvedRunSettings,
  f: PyFunction,
  args: Iterable<readonly unknown[]>,
  options: SubmitOptions,
): Promise<Submitted> {
  const func = checkFunction(f);
  const list = checkArgs(args);
  const protocol = settings.pickleProtocol;
  const ns = encodeNamespace(options.ns ?? {}, protocol);
  checkStore(context, options.retries ?? 0);
  if (options.signal?.aborted) throw abortError(options.signal);

  const lease = list.length > 0 ? await context.openCluster() : undefined;
  let server: SheepdogServer | undefined;
  try {
    lease?.cluster.scheduler.checkOptions?.(settings.geOpts);
    const slots = await lease?.cluster.scheduler.slots?.().catch(() => undefined);
    const chunkSize = settings.chunkSize ?? autoChunkSize(list.length, slots);
    const { id: request, token } = await context.store.createRequest({
      func: new TextEncoder().encode(JSON.stringify(func)),
      ns,
      args: (function* () {
        for (const item of list) yield encode(asTuple(Array.from(item)), { protocol });
      })(),
      meta: { connection: context.connection, chunkSize, pickleProtocol: protocol },
    });
    server = await context.runtime.server(context, settings.port);
    const submitted: Submitted = {
      context,
      settings,
      request,
      token,
      tasks: list.length,
      chunkSize,
      server,
      name: `sheepdog_${request}_${randomBytes(4).toString("hex")}`,
      job: undefined,
      lease,
      url: `http://${await workerHost(settings, lease)}:${server.port}`,
    };
    if (!lease) return submitted;
    if (options.signal?.aborted) throw abortError(options.signal);
    submitted.job = await submitJob(submitted, {
      name: submitted.name,
      tasks: Math.ceil(list.length / chunkSize),
      geOpts: settings.geOpts,
      taskOffset: 0,
    });
    await context.store.updateMeta(request, {
      job: submitted.job,
      jobs: [submitted.job],
      port: server.port,
    });
    return submitted;
  } catch (error) {
    await lease?.release();
    await server?.close();
    throw error;
  }
}

/** One attempt's array job: `tasks` tasks, the request's tasks after `taskOffset`. */
export interface Attempt {
  name: string;
  tasks: number;
  geOpts: string[];
  taskOffset: number;
}

/** Submits one attempt's array job. */
export async function submitJob(submitted: Submitted, attempt: Attempt): Promise<JobRef> {
  const { settings, lease } = submitted;
  if (!lease) throw new SheepdogError("INTERNAL", source, "A job needs a cluster.");
  const { scheduler } = lease.cluster;
  const memoryLimitBytes = scheduler.memoryLimitBytes?.(attempt.geOpts);
  const program = workerProgram({
    url: submitted.url,
    token: submitted.token,
    request: submitted.request,
    pickleProtocol: settings.pickleProtocol,
    retryWindowSeconds: settings.retryWindowSeconds,
    ...(memoryLimitBytes !== undefined && { memoryLimitBytes }),
    ...(attempt.taskOffset > 0 && { taskOffset: attempt.taskOffset }),
  });
  return scheduler.submit({
    name: attempt.name,
    tasks: attempt.tasks,
    program,
    shell: settings.shell,
    options: attempt.geOpts,
    directory: settings.sshDir,
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

function checkFunction(f: PyFunction): FunctionSource {
  if (!isPyFunction(f)) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      "The function must be Python: py`def f(x): ...` or pyFile(path, name) from @sheepdog/core.",
    );
  }
  return functionSource(f);
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

/** Retries reset failed tasks, so they need a store that can. */
function checkStore(context: Context, retries: number): void {
  if (retries > 0 && !context.store.resetTasks) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      "retries need a store with resetTasks (store-sqlite and the memory store have it). Set retries to 0 for this store.",
    );
  }
}

/** The name workers reach this machine by. */
async function workerHost(
  settings: ResolvedRunSettings,
  lease: ClusterLease | undefined,
): Promise<string> {
  if (settings.localhost) return settings.localhost;
  return lease?.cluster.remote.name === "local" ? "127.0.0.1" : localFqdn();
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
