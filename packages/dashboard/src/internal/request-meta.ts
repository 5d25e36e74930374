import type { RequestMeta, RequestSummary } from "@sheepdog/contracts";
import type { Attempt, RequestState } from "./api-types.js";

/*
 * What core keeps in a request's meta (see `submit.ts`, `run-map.ts` and `request-meta.ts` in
 * `@sheepdog/core`), read defensively: a request written by another program, or by an older
 * Sheepdog, may lack any of it.
 */

interface JobLike {
  scheduler?: unknown;
  id?: unknown;
  tasks?: unknown;
}

function text(value: unknown): string | null {
  return typeof value === "string" && value !== "" ? value : null;
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** The jobs of every attempt, first to last (`jobs`, or the single `job` of older requests). */
function jobsOf(meta: RequestMeta): JobLike[] {
  if (Array.isArray(meta.jobs)) return meta.jobs.map((job) => record(job) ?? {});
  const job = record(meta.job);
  return job ? [job] : [];
}

/** The head node a request was submitted to (`connection.host`), `null` when not recorded. */
export function hostOf(meta: RequestMeta): string | null {
  return text(record(meta.connection)?.host);
}

/** The scheduler and id of the request's latest job, `null`s before it has one. */
export function latestJobOf(meta: RequestMeta): { scheduler: string | null; jobId: string | null } {
  const job = record(meta.job) ?? jobsOf(meta).at(-1);
  return { scheduler: text(job?.scheduler), jobId: text(job?.id) };
}

/** Where the request is in its life: `cancelled` (and its like) as core records it. */
export function stateOf(row: RequestSummary): RequestState {
  const cancelled = record(row.meta.cancelled);
  const reason = cancelled?.reason;
  if (reason === "interrupted" || reason === "failed") return reason;
  if (cancelled) return "cancelled";
  return row.results + row.errors >= row.tasks ? "complete" : "running";
}

/**
 * What changes whenever a request's tasks are reset: a retry names the tasks it runs again in
 * `retryTasks` before it resets them. The rest of the meta (the job, a cancellation) leaves the
 * reports as they are.
 */
export function resetsOf(meta: RequestMeta): string {
  return JSON.stringify(meta.retryTasks ?? null);
}

/** Each attempt: the first run, then each retry of failed tasks, with its task count. */
export function attemptsOf(meta: RequestMeta, tasks: number): Attempt[] {
  const retryTasks = Array.isArray(meta.retryTasks) ? meta.retryTasks : [];
  let nextRetryTask = 0;
  return jobsOf(meta).map((job, attempt) => {
    let count = tasks;
    if (attempt > 0) {
      const jobTasks = typeof job.tasks === "number" ? job.tasks : 0;
      const chunks = retryTasks.slice(nextRetryTask, nextRetryTask + jobTasks);
      nextRetryTask += jobTasks;
      count = chunks.reduce((sum, chunk) => sum + (Array.isArray(chunk) ? chunk.length : 0), 0);
    }
    return {
      attempt,
      jobId: text(job.id),
      scheduler: text(job.scheduler),
      tasks: count,
      results: null,
      errors: null,
    };
  });
}

/** The meta facts the request's page lists, as text. */
export function factsOf(meta: RequestMeta): Record<string, string> {
  const facts: Record<string, string> = {};
  const labels = { chunkSize: "chunk size", pickleProtocol: "pickle protocol", port: "port" };
  for (const [key, label] of Object.entries(labels)) {
    const value = meta[key];
    if (typeof value === "number") facts[label] = String(value);
  }
  const cancelled = record(meta.cancelled);
  if (cancelled && typeof cancelled.at === "number") {
    facts.cancelled = `${new Date(cancelled.at).toISOString()} (${String(cancelled.reason ?? "cancelled")})`;
  }
  // The route the workers try first; a relay kept beside a direct route is only their fallback.
  if (meta.route === "direct")
    facts.route = meta.relay === undefined ? "direct" : "direct (relay as fallback)";
  else if (meta.route === "relay" || meta.relay !== undefined)
    facts.route = "relay on the head node";
  return facts;
}
