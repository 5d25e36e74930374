import type { JobRef, Scheduler, Store, TaskState } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type { TaskLayout } from "./task-layout.js";
import { taskIndices } from "./task-layout.js";

/** How far a map has come. */
export interface MapProgress {
  request: number;
  /** How many argument tuples in all. */
  tasks: number;
  results: number;
  errors: number;
  /** Array tasks the scheduler has not started yet, and those running (0 when unknown). */
  queued: number;
  running: number;
  elapsedMs: number;
  /** Which attempt is running: 1, then 2 for the first retry of failed arguments (`retries`). */
  attempt: number;
}

export interface WaitOptions {
  store: Store;
  request: number;
  tasks: number;
  /** Which arguments each of the request's array tasks covers. */
  layout: TaskLayout;
  scheduler?: Scheduler;
  job?: JobRef;
  /** The job's task `n` is the request's task `n + taskOffset` (a retry job). @default 0 */
  taskOffset?: number;
  /** The attempt this job is, for progress. @default 1 */
  attempt?: number;
  /**
   * Told about arguments whose task ended without reporting them, once they are recorded as
   * errors, with the cause written.
   */
  onDied?: (indices: readonly number[], cause: string) => void;
  signal?: AbortSignal;
  onProgress?: (progress: MapProgress) => void;
  /** Resolves early when a report for this request arrives (the server's event). */
  subscribe?: (wake: () => void) => () => void;
  /** How often the store is counted. @default 1000 */
  countIntervalMs?: number;
  /** How often the scheduler is asked. @default the scheduler's statusIntervalMs, else 2000 */
  statusIntervalMs?: number;
  /** How long a finished task may take to have its last report stored. @default 3000 */
  reportGraceMs?: number;
  /** How long a task may be unknown to the scheduler (no accounting yet) before it counts as lost. @default 15000 */
  unknownGraceMs?: number;
}

function abortError(): SheepdogError {
  return new SheepdogError("ABORTED", "core", "The map was aborted.");
}

/** Waits until every task of a request has a result or an error, turning dead tasks into errors. */
export async function waitForRequest(options: WaitOptions): Promise<MapProgress> {
  const {
    store,
    request,
    tasks,
    layout,
    scheduler,
    job,
    taskOffset = 0,
    attempt = 1,
    onDied,
    signal,
    onProgress,
    countIntervalMs = 1000,
    statusIntervalMs = options.scheduler?.statusIntervalMs ?? 2000,
    reportGraceMs = 3000,
    unknownGraceMs = 15_000,
  } = options;
  const started = Date.now();
  const settled = new Set<number>();
  const firstSeenEnded = new Map<number, number>();
  /** Tasks the scheduler last said had ended (or were held in error), not yet settled. */
  const ended = new Map<number, TaskState>();
  let queued = 0;
  let running = 0;
  let lastStatus = 0;
  let heldTasks = 0;
  let wake: (() => void) | undefined;
  const unsubscribe = options.subscribe?.(() => wake?.());
  const onAbort = () => wake?.();
  signal?.addEventListener("abort", onAbort);
  try {
    for (;;) {
      if (signal?.aborted) throw abortError();
      const counts = await store.counts(request);
      const progress: MapProgress = {
        request,
        tasks,
        results: counts.results,
        errors: counts.errors,
        queued,
        running,
        elapsedMs: Date.now() - started,
        attempt,
      };
      if (counts.results + counts.errors >= tasks) {
        // Every argument has its report, so what the scheduler still holds is of no use: tasks
        // in an error state would sit in its queue for ever, and a re-run of a task that
        // already reported (GridEngine's -r y rescheduling) would only report again.
        if ((heldTasks > 0 || queued > 0 || running > 0) && scheduler && job) {
          await scheduler.cancel(job).catch(() => {});
        }
        const final = { ...progress, queued: 0, running: 0 };
        onProgress?.(final);
        return final;
      }
      onProgress?.(progress);
      if (scheduler && job && Date.now() - lastStatus >= statusIntervalMs) {
        lastStatus = Date.now();
        // A scheduler that cannot be asked now (a dropped connection, a busy qmaster) is asked
        // again next time; reports keep arriving meanwhile.
        const states = await scheduler.status(job).catch(() => undefined);
        queued = 0;
        running = 0;
        for (const [number, state] of states ?? []) {
          if ((state.state === "queued" && !state.error) || state.state === "running") {
            if (state.state === "running") running++;
            else queued++;
            // Back in the queue or running again (rescheduled): not ended after all.
            ended.delete(number);
            firstSeenEnded.delete(number);
          } else if (!settled.has(number)) {
            ended.set(number, state);
          }
        }
      }
      // A task seen ended is settled as soon as its grace has passed, not at the next status.
      for (const [number, state] of ended) {
        if (settled.has(number)) ended.delete(number);
        else await settleEndedTask(number, state);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, countIntervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    unsubscribe?.();
    signal?.removeEventListener("abort", onAbort);
  }

  async function settleEndedTask(number: number, state: TaskState): Promise<void> {
    const now = Date.now();
    const seen = firstSeenEnded.get(number) ?? now;
    firstSeenEnded.set(number, seen);
    const grace =
      state.state === "finished" ? reportGraceMs : state.state === "queued" ? 0 : unknownGraceMs;
    if (now - seen < grace) return;
    settled.add(number);
    if (state.state === "queued") heldTasks++;
    const missing = await unreportedOf(taskIndices(layout, number + taskOffset));
    if (missing.length === 0) return;
    const cause =
      state.state === "finished"
        ? describeEnd(state)
        : state.state === "queued"
          ? `the scheduler holds it in an error state and will not run it: ${state.error}`
          : "the scheduler no longer knows it and has no accounting record of how it ended";
    const text = `Task ${number} of job ${job?.id ?? "?"} ended without reporting a result for these arguments: ${cause}.`;
    const died: number[] = [];
    for (const index of missing) {
      if (await store.putError(request, index, text)) died.push(index);
    }
    if (died.length > 0) onDied?.(died, text);
  }

  /** The indices without a report, asking the store once per run of consecutive indices. */
  async function unreportedOf(indices: readonly number[]): Promise<number[]> {
    const missing: number[] = [];
    for (let i = 0; i < indices.length; ) {
      let end = i + 1;
      while (end < indices.length && indices[end] === (indices[end - 1] as number) + 1) end++;
      missing.push(...(await store.unreported(request, indices[i] as number, end - i)));
      i = end;
    }
    return missing;
  }
}

function describeEnd(state: Extract<TaskState, { state: "finished" }>): string {
  const parts = [state.reason];
  if (state.exitCode !== null && !state.reason.includes(String(state.exitCode))) {
    parts.push(`exit status ${state.exitCode}`);
  }
  if (state.failed) parts.push(`scheduler failure ${state.failed.code}: ${state.failed.text}`);
  if (state.maxvmemBytes !== undefined) {
    parts.push(`peak memory ${(state.maxvmemBytes / 1024 ** 2).toFixed(1)} MiB`);
  }
  return parts.join("; ");
}
