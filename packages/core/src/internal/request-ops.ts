import type { JobRef, RequestId, StoreReport, TaskState } from "@sheepdog/contracts";
import { layoutOf, SheepdogError, STDOUT_REPORT_PREFIX, storeReports } from "@sheepdog/contracts";
import { decode } from "@sheepdog/serialise";
import { parseReportLines } from "@sheepdog/worker-py";
import type { GetResultsOptions, RecoverOutcome, RequestStatus } from "../types.js";
import { collectSpool } from "./collect.js";
import type { ClusterLease, Context } from "./context.js";
import { progressPrinter } from "./progress.js";
import { jobsOf, markCancelled } from "./request-meta.js";
import { decodeResults, undecodableReason } from "./result-check.js";
import { source } from "./source.js";
import { stagedOf } from "./staging.js";
import { recordEndedTasks, waitForRequest } from "./wait.js";

/** Refuses an id that cannot be a request's (`INVALID_INPUT`). */
export function checkId(id: RequestId): void {
  if (!Number.isInteger(id) || id < 1) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `A request id is a positive whole number (as mapAsync returned), not ${String(id)}.`,
    );
  }
}

function isJobRef(value: unknown): value is JobRef {
  const job = value as JobRef | undefined;
  return (
    typeof job?.id === "string" && Array.isArray(job.parts) && typeof job.scheduler === "string"
  );
}

/** A request's record and its last job, if it has one. */
async function requestJob(context: Context, id: RequestId) {
  checkId(id);
  const info = await context.store.getRequest(id);
  const job = isJobRef(info.meta.job) ? info.meta.job : undefined;
  return { info, job };
}

/**
 * Opens the context's cluster for work on `job`, which MUST have been submitted to a scheduler
 * of the same kind: a job id means nothing to another scheduler.
 */
async function clusterForJob(context: Context, job: JobRef): Promise<ClusterLease> {
  const lease = await context.openCluster(job.scheduler);
  const name = lease.cluster.scheduler.name;
  if (name !== job.scheduler) {
    await lease.release();
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `Job ${job.id} was submitted to ${job.scheduler}, but this cluster's scheduler is ${name}. Reach the cluster the request was submitted to (its host).`,
    );
  }
  return lease;
}

async function withCluster<T>(
  context: Context,
  job: JobRef,
  work: (lease: ClusterLease) => Promise<T>,
): Promise<T> {
  const lease = await clusterForJob(context, job);
  try {
    return await work(lease);
  } finally {
    await lease.release();
  }
}

/**
 * Before a lookup reads a request that has tasks without a report and a job: one status round
 * with its cluster, which records the tasks that ended without reporting as dead (provisional
 * errors, see recordEndedTasks), so that a request nobody waits for still tells the truth.
 * Resolves with the scheduler's answer, or with why there is none (the cluster cannot be
 * reached, the job is not its scheduler's): the lookup then reads what the store has. A store
 * that cannot be written (a read-only dbfile) is read as it is.
 */
async function refreshRequest(
  context: Context,
  id: RequestId,
): Promise<{ states?: Map<number, TaskState>; error?: string } | undefined> {
  const { info, job } = await requestJob(context, id);
  if (job) await collectOnce(context, id, job);
  const counts = await context.store.counts(id);
  if (!job || counts.results + counts.errors >= counts.tasks) return undefined;
  try {
    const states = await withCluster(context, job, ({ cluster }) =>
      recordEndedTasks({
        store: context.store,
        request: id,
        tasks: info.tasks,
        layout: layoutOf(info.meta, info.tasks),
        ...(typeof info.meta.taskOffset === "number" && { taskOffset: info.meta.taskOffset }),
        scheduler: cluster.scheduler,
        job,
      }),
    );
    return { states };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * Brings home what a detached request's workers spooled, when it has files on the cluster; a
 * cluster that cannot be reached leaves them for next time.
 */
async function collectOnce(context: Context, id: RequestId, job: JobRef): Promise<void> {
  const { meta } = await context.store.getRequest(id);
  if (!stagedOf(meta, id) || meta.stagedRemoved !== undefined) return;
  await withCluster(context, job, ({ cluster }) => collectSpool(context, id, cluster.remote)).catch(
    () => undefined,
  );
}

/**
 * The counts of a request and, from its cluster, the state of each of its array tasks; tasks
 * that ended without reporting are recorded as dead first (see refreshRequest).
 */
export async function requestStatus(context: Context, id: RequestId): Promise<RequestStatus> {
  const { job } = await requestJob(context, id);
  const refreshed = await refreshRequest(context, id);
  const counts = await context.store.counts(id);
  const status: RequestStatus = { id, ...counts, ...(job && { job }) };
  if (refreshed?.states) status.taskStates = refreshed.states;
  if (refreshed?.error !== undefined) status.schedulerError = refreshed.error;
  return status;
}

/** Cancels the array job of a request. Tasks already finished keep their reports. */
export async function cancelRequest(context: Context, id: RequestId): Promise<JobRef> {
  const { job } = await requestJob(context, id);
  if (!job) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `Request ${id} has no job to cancel (it had no tasks, or was never submitted).`,
    );
  }
  await withCluster(context, job, (lease) => lease.cluster.scheduler.cancel(job));
  await markCancelled(context.store, id, "cancelled");
  return job;
}

/**
 * Reads the reports the workers printed to their jobs' output (every attempt's) and stores
 * those the server never received: results survive a server that never came back.
 */
export async function recover(context: Context, id: RequestId): Promise<RecoverOutcome> {
  const { info, job } = await requestJob(context, id);
  if (!job) {
    throw new SheepdogError("INVALID_INPUT", source, `Request ${id} has no job to recover from.`);
  }
  const marker = STDOUT_REPORT_PREFIX.trim();
  const text = await withCluster(context, job, async ({ cluster }) => {
    const { scheduler } = cluster;
    if (!scheduler.outputLines) {
      throw new SheepdogError(
        "CONFIG_INVALID",
        source,
        `The ${scheduler.name} scheduler cannot read its jobs' output (it has no outputLines), so reports cannot be recovered from it.`,
      );
    }
    const lines: string[] = [];
    for (const attempt of jobsOf(info.meta))
      lines.push(...(await scheduler.outputLines(attempt, marker)));
    return lines.join("\n");
  });
  const lines = parseReportLines(text).filter(
    (line) => line.request === id && line.index >= 0 && line.index < info.tasks,
  );
  const reports: StoreReport[] = lines.map((line) => {
    if (line.kind === "error") {
      return { index: line.index, kind: "error", value: new TextDecoder().decode(line.payload) };
    }
    // As the server does: a result that does not decode is kept as its task's error.
    const unusable = undecodableReason(line.payload);
    return unusable === undefined
      ? { index: line.index, kind: "result", value: line.payload }
      : { index: line.index, kind: "error", value: unusable };
  });
  const stored = (await storeReports(context.store, id, reports)).filter(Boolean).length;
  const counts = await context.store.counts(id);
  return { found: lines.length, stored, missing: counts.tasks - counts.results - counts.errors };
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
 * task that failed, has not reported yet, or whose stored result does not decode. With
 * `block`, waits until every task has reported. Reads only (the wait records tasks that died
 * without reporting, as `map` does).
 */
export async function getResults<R>(
  context: Context,
  id: RequestId,
  options: GetResultsOptions,
): Promise<[unknown[], R | null][]> {
  checkId(id);
  if (options.block) await waitForResults(context, id, options);
  else await refreshRequest(context, id);
  const rows = await context.store.getResults(id);
  const { values } = decodeResults(rows);
  return rows.map((row, i) => [decodeOrNull(row.args) as unknown[], values[i] as R | null]);
}

/**
 * Waits for every task of a request, asking its cluster about tasks that die without
 * reporting; a cluster that cannot be reached leaves the wait to the reports alone.
 */
async function waitForResults(
  context: Context,
  id: RequestId,
  options: GetResultsOptions,
): Promise<void> {
  const { info, job } = await requestJob(context, id);
  if (job) await collectOnce(context, id, job);
  const counts = await context.store.counts(id);
  if (counts.results + counts.errors >= counts.tasks) return;
  const lease = job ? await clusterForJob(context, job).catch(() => undefined) : undefined;
  const printer = options.verbose ? progressPrinter() : undefined;
  try {
    const final = await waitForRequest({
      store: context.store,
      request: id,
      tasks: info.tasks,
      layout: layoutOf(info.meta, info.tasks),
      ...(typeof info.meta.taskOffset === "number" && { taskOffset: info.meta.taskOffset }),
      ...(typeof info.meta.attempt === "number" && { attempt: info.meta.attempt }),
      ...(job && lease && { job, scheduler: lease.cluster.scheduler }),
      ...(options.signal && { signal: options.signal }),
      ...(printer && { onProgress: printer.update }),
      ...(lease && { collect: () => collectSpool(context, id, lease.cluster.remote) }),
    });
    printer?.done(final);
  } finally {
    await lease?.release();
    await context.runtime.release(context, id);
  }
}

/**
 * The failed tasks of a request as `[args, error]`, in argument order; `error` is the Python
 * traceback, or the scheduler's account of how a task died without reporting (one status round
 * first records those, see refreshRequest).
 */
export async function getErrors(context: Context, id: RequestId): Promise<[unknown[], string][]> {
  checkId(id);
  await refreshRequest(context, id);
  const rows = await context.store.getErrors(id);
  return rows.map((row) => [decodeOrNull(row.args) as unknown[], row.error]);
}

/**
 * What each task of a request printed (its stdout and stderr, the tail when it was long, the
 * cut marked), with its arguments, in argument order; only tasks that printed something, or
 * only `index` when given. A store that keeps no logs is `CONFIG_INVALID`.
 */
export async function getLogs(
  context: Context,
  id: RequestId,
  index?: number,
): Promise<{ index: number; args: unknown[]; log: string }[]> {
  checkId(id);
  const { store } = context;
  if (!store.getLogs) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      "This store keeps no task logs (it has no getLogs). Use store-sqlite or store-postgres.",
    );
  }
  const info = await store.getRequest(id);
  if (index !== undefined && (!Number.isSafeInteger(index) || index < 0 || index >= info.tasks)) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `Request ${id} has tasks 0 to ${info.tasks - 1}, not ${String(index)}.`,
    );
  }
  const logs = await store.getLogs(id, index ?? 0, index === undefined ? undefined : 1);
  const rows = [];
  for (const { index: at, log } of logs) {
    const [args] = await store.getArgs(id, at, 1);
    rows.push({ index: at, args: args ? (decodeOrNull(args) as unknown[]) : [], log });
  }
  return rows;
}
