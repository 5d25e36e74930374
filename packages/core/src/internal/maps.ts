import type { RequestId } from "@sheepdog/contracts";
import type { PyFunction } from "@sheepdog/serialise";
import type { ResolvedRunSettings } from "../config.js";
import { TasksFailedError } from "../errors.js";
import type { MapAsyncOptions, MapOptions, MapSettled } from "../types.js";
import type { Context } from "./context.js";
import { collectResults } from "./result-check.js";
import { settledResults, waitAndRetry } from "./run-map.js";
import type { Submitted } from "./submit.js";
import { submit } from "./submit.js";

/** Submits a map and waits for it; resolves with the request once every task has reported. */
async function runToEnd(
  context: Context,
  settings: ResolvedRunSettings,
  f: PyFunction,
  args: Iterable<readonly unknown[]>,
  options: MapOptions,
): Promise<Submitted> {
  return context.runtime.interruptible(async (interrupt) => {
    const signal = options.signal ? AbortSignal.any([options.signal, interrupt]) : interrupt;
    const submitted = await submit(context, settings, f, args, {
      ns: options.ns,
      signal,
      retries: settings.retries,
      verbose: options.verbose,
      detach: options.detach,
    });
    await waitAndRetry(submitted, options, signal);
    return submitted;
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
  const { request, tasks } = await runToEnd(context, settings, f, args, options);
  const { values, undecodable } = await collectResults(context.store, request, tasks);
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
  const { request, tasks } = await runToEnd(context, settings, f, args, options);
  return { request, results: await settledResults<R>(context.store, request, tasks) };
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
  const { request, lease, server, routes } = await submit(context, settings, f, args, options);
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
