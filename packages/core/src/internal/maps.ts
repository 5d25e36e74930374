import type { RequestId } from "@sheepdog/contracts";
import { indexRuns, SheepdogError } from "@sheepdog/contracts";
import type { PyFunction } from "@sheepdog/serialise";
import type { ResolvedRunSettings } from "../config.js";
import { TasksFailedError } from "../errors.js";
import type { MapAsyncOptions, MapOptions, MapSettled } from "../types.js";
import type { Context } from "./context.js";
import { dashboardOption, openDashboard } from "./dashboard.js";
import { collectResults, LiveResults } from "./result-check.js";
import { INLINE_CHECK_BYTES } from "./result-checker.js";
import { settledResults, waitAndRetry } from "./run-map.js";
import { source } from "./source.js";
import type { Submitted } from "./submit.js";
import { submit, submitEncoded } from "./submit.js";

/**
 * Submits a map and waits for it; resolves with the request once every task has reported. With
 * the `dashboard` option, a dashboard of the store is open (its address on stderr) meanwhile.
 */
async function runToEnd(
  context: Context,
  settings: ResolvedRunSettings,
  f: PyFunction,
  args: Iterable<readonly unknown[]>,
  options: MapOptions,
): Promise<Ended> {
  const wanted = dashboardOption(options.dashboard);
  if (wanted === undefined) return waitToEnd(context, settings, f, args, options);
  const dashboard = await openDashboard(
    context,
    async () => context,
    (target, id) => retryFailedTasks(target, settings, id),
    wanted,
  );
  process.stderr.write(`[sheepdog] dashboard: ${dashboard.url}\n`);
  try {
    return await waitToEnd(context, settings, f, args, options);
  } finally {
    await dashboard.close();
  }
}

/** A map whose tasks have all reported, and the results its process saw stored meanwhile. */
interface Ended {
  request: RequestId;
  tasks: number;
  live: LiveResults;
}

async function waitToEnd(
  context: Context,
  settings: ResolvedRunSettings,
  f: PyFunction,
  args: Iterable<readonly unknown[]>,
  options: MapOptions,
): Promise<Ended> {
  return context.runtime.interruptible(async (interrupt) => {
    const signal = options.signal ? AbortSignal.any([options.signal, interrupt]) : interrupt;
    const submitted = await submit(context, settings, f, args, {
      ns: options.ns,
      signal,
      retries: settings.retries,
      verbose: options.verbose,
      detach: options.detach,
    });
    const { store } = context;
    const live = new LiveResults(store, submitted.request, submitted.tasks, INLINE_CHECK_BYTES);
    try {
      await waitAndRetry(submitted, options, signal);
    } catch (error) {
      live.stop();
      throw error;
    }
    return { request: submitted.request, tasks: submitted.tasks, live };
  });
}

/** `map`: the results in argument order, `null` where a task failed (or `throwOnError`). */
export async function mapValues<R>(
  context: Context,
  settings: ResolvedRunSettings,
  f: PyFunction,
  args: Iterable<readonly unknown[]>,
  options: MapOptions,
): Promise<(R | null)[]> {
  const { request, tasks, live } = await runToEnd(context, settings, f, args, options);
  const { values, undecodable } = await collectResults(context.store, request, tasks, live);
  if (options.throwOnError) {
    const counts = await context.store.counts(request);
    if (counts.errors > 0 || undecodable.size > 0) {
      const failures = (await context.store.getErrors(request)).map(({ index, error }) => ({
        index,
        error,
      }));
      for (const [index, error] of undecodable) failures.push({ index, error });
      throw new TasksFailedError(request, tasks, failures);
    }
  }
  return values as (R | null)[];
}

/** `mapSettled`: every task's value or error, and the request id. */
export async function mapSettled<R>(
  context: Context,
  settings: ResolvedRunSettings,
  f: PyFunction,
  args: Iterable<readonly unknown[]>,
  options: MapOptions,
): Promise<MapSettled<R>> {
  const { request, tasks, live } = await runToEnd(context, settings, f, args, options);
  return { request, results: await settledResults<R>(context.store, request, tasks, live) };
}

/**
 * `mapAsync`: the request id as soon as the job is queued. The server keeps serving the
 * request until every task has reported (or the instance closes); so does the relay, when the
 * workers need one, and the connection it runs over. Otherwise the cluster is released now.
 * A detached request keeps nothing open: its workers spool what they cannot deliver.
 */
export async function mapAsync(
  context: Context,
  settings: ResolvedRunSettings,
  f: PyFunction,
  args: Iterable<readonly unknown[]>,
  options: MapAsyncOptions,
): Promise<RequestId> {
  const submitted = await submit(context, settings, f, args, { ...options, withoutWait: true });
  return serveSubmitted(submitted, options);
}

/**
 * Runs the failed tasks of a request again as a new request (its function, namespace and the
 * failed arguments, `meta.retryOf` naming where they came from), submitted as `mapAsync`
 * submits, to the scheduler of the request's job; resolves with the new request's id.
 */
export async function retryFailedTasks(
  context: Context,
  settings: ResolvedRunSettings,
  id: RequestId,
): Promise<RequestId> {
  const { store } = context;
  const info = await store.getRequest(id);
  const failed = (await store.getErrors(id)).map((row) => row.index);
  if (failed.length === 0) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `Request ${id} has no failed tasks to run again.`,
    );
  }
  const args: Uint8Array[] = [];
  for (const run of indexRuns(failed))
    args.push(...(await store.getArgs(id, run.first, run.count)));
  const work = {
    func: info.func,
    ns: info.ns,
    tasks: args.length,
    args,
    meta: { retryOf: { request: id, indices: failed } },
  };
  const scheduler = (info.meta.job as { scheduler?: unknown } | undefined)?.scheduler;
  const options = typeof scheduler === "string" ? { scheduler } : {};
  const submitted = await submitEncoded(context, settings, work, { ...options, withoutWait: true });
  return serveSubmitted(submitted, {});
}

/**
 * After a submission for `mapAsync`: the server keeps serving the request until every task has
 * reported, and so do the relay and its connection when the workers need one; a detached
 * request keeps nothing open.
 */
async function serveSubmitted(submitted: Submitted, options: MapAsyncOptions): Promise<RequestId> {
  const { context, request, lease, server, routes } = submitted;
  const release = async (): Promise<void> => {
    await routes?.close();
    await lease?.release();
  };
  if (options.detach) {
    // The workers need nothing of this process: what they cannot deliver, they spool.
    await server.close();
    await release();
  } else if (routes?.relayed) {
    context.runtime.hold(context, request, server, release);
  } else {
    await release();
    context.runtime.hold(context, request, server);
  }
  return request;
}
