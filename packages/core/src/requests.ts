import type {
  JobRef,
  RequestCounts,
  RequestSummary,
  StoreReport,
  TaskState,
} from "@sheepdog/contracts";
import { SheepdogError, STDOUT_REPORT_PREFIX } from "@sheepdog/contracts";
import type { SheepdogServer } from "@sheepdog/server";
import { parseReportLines } from "@sheepdog/worker-py";
import { resolveConfig } from "./config.js";
import type { RequestConfig } from "./internal/request-job.js";
import { dbfileOf, requestJob } from "./internal/request-job.js";
import { clusterFor, serverForConfig, storeFor } from "./internal/resources.js";
import { undecodableReason } from "./internal/result-check.js";

export type { RequestConfig };

/** Every request in a dbfile, oldest first, with its counts. */
export async function listRequests(config: RequestConfig = {}): Promise<RequestSummary[]> {
  return (await storeFor(dbfileOf(config))).listRequests();
}

/** Where a request is: its counts, its job, and the scheduler's state of each array task. */
export interface RequestStatus extends RequestCounts {
  id: number;
  job?: JobRef;
  /**
   * Each array task's state, when the scheduler could be asked; `undefined` when the request
   * has no job or its scheduler no longer knows it (a local job of an ended process).
   */
  taskStates?: Map<number, TaskState>;
  /** Why `taskStates` is missing, when it is. */
  schedulerError?: string;
}

/** The counts of a request and, from its cluster, the state of each of its array tasks. */
export async function requestStatus(
  id: number,
  config: RequestConfig = {},
): Promise<RequestStatus> {
  const { store, job, config: resolved } = await requestJob(id, config);
  const counts = await store.counts(id);
  const status: RequestStatus = { id, ...counts, ...(job && { job }) };
  if (!job || counts.results + counts.errors >= counts.tasks) return status;
  try {
    const cluster = await clusterFor(resolved);
    try {
      status.taskStates = await cluster.scheduler.status(job);
    } finally {
      await cluster.release();
    }
  } catch (error) {
    status.schedulerError = error instanceof Error ? error.message : String(error);
  }
  return status;
}

/** Cancels the array job of a request (`qdel`). Tasks already finished keep their reports. */
export async function cancelRequest(id: number, config: RequestConfig = {}): Promise<JobRef> {
  const { job, config: resolved } = await requestJob(id, config);
  if (!job) {
    throw new SheepdogError(
      "INVALID_INPUT",
      "core",
      `Request ${id} has no job to cancel (it had no tasks, or was never submitted).`,
    );
  }
  const cluster = await clusterFor(resolved);
  try {
    await cluster.scheduler.cancel(job);
  } finally {
    await cluster.release();
  }
  return job;
}

/** What {@link recover} found. */
export interface RecoverOutcome {
  /** Report lines found in the job's output files for this request. */
  found: number;
  /** Reports stored now (the server never received them). */
  stored: number;
  /** Tasks still without a report. */
  missing: number;
}

/**
 * Reads the reports the workers printed to their job output files (over SSH) and stores those
 * the server never received: results survive a server that never came back.
 */
export async function recover(id: number, config: RequestConfig = {}): Promise<RecoverOutcome> {
  const { store, info, job, config: resolved } = await requestJob(id, config);
  if (!job) {
    throw new SheepdogError("INVALID_INPUT", "core", `Request ${id} has no job to recover from.`);
  }
  const cluster = await clusterFor(resolved);
  let text: string;
  try {
    // Every attempt's output: a retry job is named after the first with `_r<attempt>`.
    const base = job.name.replace(/_r\d+$/, "");
    const names = `-name ${shellQuote(`${base}.o*`)} -o -name ${shellQuote(`${base}_r*.o*`)}`;
    const { stdout, stderr, code } = await cluster.remote.exec(
      `find ${shellQuote(job.directory)} -maxdepth 1 \\( ${names} \\) -exec grep -h -F ${shellQuote(STDOUT_REPORT_PREFIX.trim())} {} +`,
    );
    if (code !== 0 && code !== 1) {
      throw new SheepdogError(
        "REMOTE_FAILED",
        "core",
        `Cannot read the output files of job ${job.id} in ${job.directory} on ${cluster.remote.name}: ${stderr.trim()}`,
      );
    }
    text = stdout;
  } finally {
    await cluster.release();
  }
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
  let stored = 0;
  if (store.putReports) {
    stored = (await store.putReports(id, reports)).filter(Boolean).length;
  } else {
    for (const report of reports) {
      const fresh =
        report.kind === "result"
          ? await store.putResult(id, report.index, report.value)
          : await store.putError(id, report.index, report.value);
      if (fresh) stored++;
    }
  }
  const counts = await store.counts(id);
  return { found: lines.length, stored, missing: counts.tasks - counts.results - counts.errors };
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/** Options of {@link serve}. */
export interface ServeOptions {
  /** @default the port `request`'s workers were given, else a free port */
  port?: number;
  /** @default "./sheepdog.sqlite" (or SHEEPDOG_DBFILE) */
  dbfile?: string;
  /** A request whose workers this server is for: its port is the default. */
  request?: number;
}

/**
 * Starts a server for a dbfile, as the seed's "Restarting The Server": the workers of queued
 * and running tasks report to it. Close it when the job is done.
 */
export async function serve(options: ServeOptions = {}): Promise<SheepdogServer> {
  const dbfile = options.dbfile ?? dbfileOf({});
  const store = await storeFor(dbfile);
  let port = options.port;
  if (!port && options.request !== undefined) {
    const { meta } = await store.getRequest(options.request);
    if (typeof meta.port === "number") port = meta.port;
  }
  const { config } = resolveConfig({ host: "local", ...(port !== undefined && { port }), dbfile });
  return serverForConfig(config, store);
}
