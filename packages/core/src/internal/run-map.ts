import type { DeathKind, RequestId, Store, TaskError, TaskLayout } from "@sheepdog/contracts";
import { parseResources, retryChunks, SheepdogError, taskCount } from "@sheepdog/contracts";
import { checkOptionList, schedulerOptionSettings } from "../config.js";
import type {
  AttemptFailures,
  AttemptOptions,
  FailureKind,
  MapOptions,
  MapProgress,
  Settled,
} from "../types.js";
import { collectSpool, removeWhenComplete } from "./collect.js";
import { progressPrinter } from "./progress.js";
import { jobsOf, markCancelled } from "./request-meta.js";
import type { LiveResults } from "./result-check.js";
import { collectResults } from "./result-check.js";
import { source } from "./source.js";
import type { Submitted } from "./submit.js";
import {
  abortError,
  attemptOptionsOf,
  autoChunkSize,
  checkAttemptOptions,
  submitJob,
} from "./submit.js";
import { removeTokenFile } from "./token-file.js";
import { waitForRequest } from "./wait.js";

/** How far the attempts of a map have come. */
interface AttemptState {
  attempt: number;
  taskOffset: number;
  layout: TaskLayout;
  options: AttemptOptions;
  /** The errors of the earlier attempts of each argument that was run again. */
  history: Map<number, string[]>;
}

/**
 * Waits for a submitted map, running failed arguments again as new array jobs (`retries`),
 * then reads every task's outcome. The job is cancelled when the wait is aborted or fails
 * (unless `keepJob`); the server handle and the cluster are released in every case.
 */
export async function waitAndRetry(
  submitted: Submitted,
  options: MapOptions,
  signal: AbortSignal,
): Promise<void> {
  const { context, request, settings } = submitted;
  const printer = options.verbose ? progressPrinter() : undefined;
  const state: AttemptState = {
    attempt: 1,
    taskOffset: 0,
    layout: {
      tasks: submitted.tasks,
      chunkSize: submitted.chunkSize,
      retryTasks: [],
      ...(submitted.claims && { claims: new Map() }),
    },
    options: attemptOptionsOf(settings),
    history: new Map(),
  };
  let final: MapProgress;
  let jobLeftRunning = false;
  try {
    for (;;) {
      const died = new Map<number, DeathKind>();
      final = await waitForAttempt(submitted, state, signal, died, (progress) => {
        printer?.update(progress);
        options.onProgress?.(progress);
      });
      if (!submitted.lease || state.attempt > settings.retries || final.errors === 0) break;
      if (!(await retryFailed(submitted, state, options, died, signal))) break;
    }
    if (state.history.size > 0) await writeAttemptHistory(context.store, request, state.history);
  } catch (error) {
    if (submitted.job && submitted.lease && !options.keepJob) {
      await submitted.lease.cluster.scheduler.cancel(submitted.job).catch(() => {});
      const aborted = SheepdogError.isInstance(error) && error.code === "ABORTED";
      await markCancelled(context.store, request, aborted ? "interrupted" : "failed");
    }
    jobLeftRunning = options.keepJob === true;
    throw SheepdogError.isInstance(error) && error.code === "ABORTED" ? abortError(signal) : error;
  } finally {
    // The tasks of a job left running still need the token; no other task of this map can.
    if (!jobLeftRunning) await removeStagedFiles(submitted);
    // The server first: it answers the requests under way, which the relay then carries back.
    await submitted.server.close();
    await submitted.routes?.close();
    await submitted.lease?.release();
  }
  printer?.done(final);
  if (options.verbose && final.errors > 0) {
    process.stderr.write(
      `[sheepdog] ${final.errors} of ${final.tasks} tasks failed. See why with getErrors(${request}${context.storeHint}).\n`,
    );
  }
}

function waitForAttempt(
  submitted: Submitted,
  state: AttemptState,
  signal: AbortSignal,
  died: Map<number, DeathKind>,
  onProgress: (progress: MapProgress) => void,
): Promise<MapProgress> {
  const { context, request, job, lease, server } = submitted;
  return waitForRequest({
    store: context.store,
    request,
    tasks: submitted.tasks,
    layout: state.layout,
    taskOffset: state.taskOffset,
    attempt: state.attempt,
    ...(job && lease && { job, scheduler: lease.cluster.scheduler, jobJustSubmitted: true }),
    signal,
    subscribe: (wake) =>
      server.onReport((event) => {
        if (event.request === request) wake();
      }),
    onDied: (indices, kind) => {
      for (const index of indices) died.set(index, kind);
    },
    settleClaims: (task) => server.settleTask(request, task),
    idleTasks: () => server.idleTasks(request),
    onProgress,
    ...(submitted.staged &&
      lease && { collect: () => collectSpool(context, request, lease.cluster.remote) }),
  });
}

/**
 * Removes the token file, and a detached request's directory once every task has its report
 * (else `sheepdog cleanup` finds it). A failure to remove them is not the map's.
 */
async function removeStagedFiles(submitted: Submitted): Promise<void> {
  const { staged, lease, context, request } = submitted;
  if (staged && lease) {
    await removeWhenComplete(context, request, lease.cluster.remote, staged).catch(() => false);
  }
  await removeTokenFile(submitted);
}

/**
 * Submits the next attempt for the arguments whose failure `retryOn` covers; resolves false
 * when there are none, or when `retryWith` says to stop.
 */
async function retryFailed(
  submitted: Submitted,
  state: AttemptState,
  options: MapOptions,
  died: Map<number, DeathKind>,
  signal: AbortSignal,
): Promise<boolean> {
  const { context, request, settings, lease } = submitted;
  const { store } = context;
  const failed = (await store.getErrors(request)).filter(
    (row) => settings.retryOn === "any" || died.has(row.index) || isMemoryError(row.error),
  );
  if (failed.length === 0 || !lease || !store.resetTasks) return false;
  const changed = await options.retryWith?.(
    state.attempt + 1,
    structuredClone(state.options),
    failuresOf(failed, died),
  );
  if (changed === false) return false;
  state.attempt += 1;
  if (changed) state.options = changedOptions(state.options, changed);
  checkAttemptOptions(lease.cluster.scheduler, state.options);
  const indices = failed.map((row) => row.index);
  for (const row of failed) {
    const errors = state.history.get(row.index) ?? [];
    errors.push(row.error);
    state.history.set(row.index, errors);
  }
  const slots = await lease.cluster.scheduler.slots?.().catch(() => undefined);
  const chunkSize = settings.chunkSize ?? autoChunkSize(indices.length, slots);
  const chunks = retryChunks(indices, chunkSize);
  state.taskOffset = taskCount(state.layout);
  // A retry's tasks claim none: its wait answers for each task's own arguments alone.
  const { claims: _firstAttempt, ...layout } = state.layout;
  state.layout = { ...layout, retryTasks: [...layout.retryTasks, ...chunks] };
  // The server serves the new tasks from the meta, so it is written before the job runs.
  await store.updateMeta(request, { retryTasks: state.layout.retryTasks });
  await store.resetTasks(request, indices);
  if (signal.aborted) throw abortError(signal);
  submitted.job = await submitJob(submitted, {
    name: `${submitted.name}_r${state.attempt}`,
    tasks: chunks.length,
    callsPerTask: Math.min(chunkSize, indices.length),
    options: state.options,
    taskOffset: state.taskOffset,
    number: state.attempt,
  });
  const jobs = jobsOf((await store.getRequest(request)).meta);
  await store.updateMeta(request, {
    job: submitted.job,
    jobs: [...jobs, submitted.job],
    taskOffset: state.taskOffset,
    attempt: state.attempt,
  });
  return true;
}

/** Why each argument about to be run again failed, for `retryWith`. */
function failuresOf(failed: TaskError[], died: Map<number, DeathKind>): AttemptFailures {
  const failures: AttemptFailures = { failed: [], kinds: {} };
  for (const row of failed) {
    const kind: FailureKind =
      died.get(row.index) ?? (isMemoryError(row.error) ? "out-of-memory" : "exception");
    failures.failed.push({ index: row.index, kind });
    failures.kinds[kind] = (failures.kinds[kind] ?? 0) + 1;
  }
  return failures;
}

/** The options of the next attempt: `previous` with what `retryWith` returned, checked. */
function changedOptions(
  previous: AttemptOptions,
  changed: Partial<AttemptOptions>,
): AttemptOptions {
  if (typeof changed !== "object" || changed === null) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `retryWith must return an object such as { resources: { memory: "8G" } }, nothing, or false, not ${JSON.stringify(changed)}.`,
    );
  }
  const next = { ...previous };
  for (const setting of schedulerOptionSettings) {
    if (changed[setting] !== undefined) {
      next[setting] = checkOptionList(`${setting} returned by retryWith`, changed[setting]);
    }
  }
  if (changed.resources !== undefined) {
    parseResources(changed.resources, "resources returned by retryWith");
    next.resources = { ...changed.resources };
  }
  return next;
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
  request: RequestId,
  history: Map<number, string[]>,
): Promise<void> {
  const rewritten: { index: number; text: string; provisional: boolean }[] = [];
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
      // A death the scheduler inferred stays replaceable by the task's real report.
      provisional: row.provisional === true,
    });
  }
  if (rewritten.length === 0 || !store.resetTasks) return;
  await store.resetTasks(
    request,
    rewritten.map((r) => r.index),
  );
  for (const { index, text, provisional } of rewritten) {
    await store.putError(request, index, text, { provisional });
  }
}

/** Every task's outcome, in argument order: its value, or why it failed. */
export async function settledResults<R>(
  store: Store,
  request: RequestId,
  tasks: number,
  live?: LiveResults,
): Promise<Settled<R>[]> {
  const { values, undecodable } = await collectResults(store, request, tasks, live);
  const errors = new Map<number, string>(undecodable);
  for (const row of await store.getErrors(request)) errors.set(row.index, row.error);
  return values.map((value, index) => {
    const error = errors.get(index);
    return error === undefined ? { ok: true, value: value as R } : { ok: false, error };
  });
}
