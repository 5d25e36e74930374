import { SheepdogError } from "@sheepdog/contracts";
import { decode } from "@sheepdog/serialise";
import { progressPrinter } from "./internal/progress.js";
import { dbfileOf, requestJob } from "./internal/request-job.js";
import { clusterFor, storeFor } from "./internal/resources.js";
import { decodeResults } from "./internal/result-check.js";
import { layoutOf } from "./internal/task-layout.js";
import { waitForRequest } from "./internal/wait.js";

/** Options of {@link getResults}. */
export interface GetResultsOptions {
  /** The SQLite file the request is in. @default "./sheepdog.sqlite" (or SHEEPDOG_DBFILE) */
  dbfile?: string;
  /** Wait until every task has a result or an error. @default false */
  block?: boolean;
  /** With `block`, progress on stderr. @default false */
  verbose?: boolean;
  /** With `block`, aborting stops the wait (the job runs on) and rejects with `ABORTED`. */
  signal?: AbortSignal;
}

/** Options of {@link getErrors}. */
export interface GetErrorsOptions {
  /** The SQLite file the request is in. @default "./sheepdog.sqlite" (or SHEEPDOG_DBFILE) */
  dbfile?: string;
}

function checkId(id: number): void {
  if (!Number.isInteger(id) || id < 1) {
    throw new SheepdogError(
      "INVALID_INPUT",
      "core",
      `A request id is a positive whole number (as mapAsync returned), not ${String(id)}.`,
    );
  }
}

/** Decodes an argument tuple; one that does not decode becomes `null`. */
function decodeOrNull(bytes: Uint8Array): unknown {
  try {
    return decode(bytes);
  } catch {
    return null;
  }
}

/**
 * Every task of a request as `[args, result]`, in argument order; `result` is `null` for a
 * task that failed or has not reported yet. With `block`, waits until every task has. A
 * stored result that cannot be decoded becomes an error of its task (see {@link getErrors});
 * the other results are unaffected.
 *
 * @example
 * ```ts
 * const id = await mapAsync(f, [[1, 2]], { host: "fear" });
 * const rows = await getResults(id, { block: true }); // [[[1, 2], 3]]
 * ```
 */
export async function getResults<R = unknown>(
  id: number,
  options: GetResultsOptions = {},
): Promise<[unknown[], R | null][]> {
  checkId(id);
  const store = await storeFor(dbfileOf(options));
  if (options.block) await waitForResults(id, options);
  const rows = await store.getResults(id);
  const results = await decodeResults(store, id, rows);
  return rows.map((row, i) => [decodeOrNull(row.args) as unknown[], results[i] as R | null]);
}

/**
 * Waits for every task of a request, asking its cluster (reached as the request was) about
 * tasks that die without reporting.
 */
async function waitForResults(id: number, options: GetResultsOptions): Promise<void> {
  const { store, info, job, config } = await requestJob(id, { dbfile: dbfileOf(options) });
  const counts = await store.counts(id);
  if (counts.results + counts.errors >= counts.tasks) return;
  const cluster = job ? await clusterFor(config).catch(() => undefined) : undefined;
  const printer = options.verbose ? progressPrinter() : undefined;
  try {
    const final = await waitForRequest({
      store,
      request: id,
      tasks: info.tasks,
      layout: layoutOf(info.meta, info.tasks),
      ...(typeof info.meta.taskOffset === "number" && { taskOffset: info.meta.taskOffset }),
      ...(typeof info.meta.attempt === "number" && { attempt: info.meta.attempt }),
      ...(job && cluster && { job, scheduler: cluster.scheduler }),
      ...(options.signal && { signal: options.signal }),
      ...(printer && { onProgress: printer.update }),
    });
    printer?.done(final);
  } finally {
    await cluster?.release();
  }
}

/**
 * The failed tasks of a request as `[args, error]`, in argument order; `error` is the Python
 * traceback, or the scheduler's account of how a task died without reporting.
 */
export async function getErrors(
  id: number,
  options: GetErrorsOptions = {},
): Promise<[unknown[], string][]> {
  checkId(id);
  const store = await storeFor(dbfileOf(options));
  const rows = await store.getErrors(id);
  return rows.map((row) => [decodeOrNull(row.args) as unknown[], row.error]);
}
