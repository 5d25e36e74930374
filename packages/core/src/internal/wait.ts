import type {
  DeathKind,
  JobRef,
  Scheduler,
  Store,
  TaskLayout,
  TaskState,
} from "@sheepdog/contracts";
import {
  indexRuns,
  layoutOf,
  SheepdogError,
  taskIndices,
  WORKER_EXIT_CODES,
} from "@sheepdog/contracts";
import type { MapProgress } from "../types.js";
import { source } from "./source.js";

export interface WaitOptions {
  store: Store;
  request: number;
  tasks: number;
  /**
   * Which arguments each of the request's array tasks covers. With `claims` (the request lets
   * tasks claim others', see `wire.ts` of `@sheepdog/contracts`), the claims are read anew
   * each time a task is settled: from `settleClaims`, else from the request's meta.
   */
  layout: TaskLayout;
  /**
   * The server's claims of the request as they are now, chunk task `task` closed to claims
   * first (its array task ended): what the server that the workers ask knows before its meta.
   */
  settleClaims?: (task: number) => Promise<ReadonlyMap<number, number> | undefined>;
  /**
   * The array tasks that can find no work, as the server knows (see `idleTasks` of
   * `@sheepdog/server`): they are cancelled once, where the scheduler has `cancelTasks`.
   */
  idleTasks?: () => Promise<readonly number[]>;
  scheduler?: Scheduler;
  job?: JobRef;
  /** The job's task `n` is the request's task `n + taskOffset` (a retry job). @default 0 */
  taskOffset?: number;
  /** The attempt this job is, for progress. @default 1 */
  attempt?: number;
  /**
   * Told about arguments whose task ended without reporting them, once they are recorded as
   * errors, with what the task died of and the error written.
   */
  onDied?: (indices: readonly number[], kind: DeathKind, text: string) => void;
  signal?: AbortSignal;
  onProgress?: (progress: MapProgress) => void;
  /** Resolves early when a report for this request arrives (the server's event). */
  subscribe?: (wake: () => void) => () => void;
  /** How often the store is counted. @default 1000 */
  countIntervalMs?: number;
  /**
   * How often the scheduler is asked while its answers change: @default the scheduler's
   * statusIntervalMs, else 2000. While nothing changes, the interval grows by half each time,
   * up to {@link maxStatusIntervalMs}.
   */
  statusIntervalMs?: number;
  /** The longest interval between two questions to the scheduler. @default 6000 */
  maxStatusIntervalMs?: number;
  /**
   * The job was submitted just now: the scheduler is first asked one interval later, not at
   * once. Until then it could only say that the tasks are queued, and on a cluster whose head
   * node also runs tasks the question takes CPU from the tasks starting. @default false
   */
  jobJustSubmitted?: boolean;
  /** How long a finished task may take to have its last report stored. @default 3000 */
  reportGraceMs?: number;
  /** How long a task may be unknown to the scheduler (no accounting yet) before it counts as lost. @default 15000 */
  unknownGraceMs?: number;
  /**
   * Brings home reports that reach the store by another way than the server (a detached
   * request's spool): called at the scheduler's pace, and before a task that ended is
   * recorded as dead. A failure (a dropped connection) is tried again next time.
   */
  collect?: () => Promise<unknown>;
}

function abortError(): SheepdogError {
  return new SheepdogError("ABORTED", source, "The map was aborted.");
}

/** Waits until every task of a request has a result or an error, turning dead tasks into errors. */
export async function waitForRequest(options: WaitOptions): Promise<MapProgress> {
  const watch = new RequestWatch(options);
  const unsubscribe = options.subscribe?.(() => watch.wake());
  const onAbort = () => watch.wake();
  options.signal?.addEventListener("abort", onAbort);
  try {
    for (;;) {
      if (options.signal?.aborted) throw abortError();
      await watch.collect(false);
      const final = await watch.countReports();
      if (final) return final;
      void watch.askScheduler();
      await watch.settleEnded();
      await watch.cancelIdle();
      await watch.sleep();
    }
  } finally {
    unsubscribe?.();
    options.signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * One round of what {@link waitForRequest} does, for a lookup of a request that nobody may be
 * waiting for (`mapAsync`, then the program went on or exited): asks the scheduler once, and
 * records each task it says ended (or holds in error) without reporting as dead, with its cause,
 * at once. Those errors are provisional, so a report still on its way replaces them. Tasks the
 * scheduler no longer knows are left as they are: one look cannot tell them from tasks whose
 * accounting is late. Resolves with the scheduler's answer, or rejects as `status` does.
 */
export async function recordEndedTasks(
  options: Omit<WaitOptions, "scheduler" | "job"> &
    Required<Pick<WaitOptions, "scheduler" | "job">>,
): Promise<Map<number, TaskState>> {
  const states = await options.scheduler.status(options.job);
  const watch = new RequestWatch({
    ...options,
    scheduler: { ...options.scheduler, status: async () => states },
    reportGraceMs: 0,
  });
  await watch.askScheduler();
  await watch.settleEnded();
  return states;
}

/** What a wait knows of a request's tasks between two rounds. */
class RequestWatch {
  readonly #options: WaitOptions;
  readonly #started = Date.now();
  readonly #settled = new Set<number>();
  readonly #firstSeenEnded = new Map<number, number>();
  /** Tasks the scheduler last said had ended (or were held in error), not yet settled. */
  readonly #ended = new Map<number, TaskState>();
  /** Tasks the scheduler last said were queued (not held in error). */
  readonly #queued = new Set<number>();
  /** Tasks cancelled because they could find no work (see cancelIdle). */
  readonly #idleCancelled = new Set<number>();
  #running = 0;
  #lastStatus = 0;
  #lastCollect = 0;
  #statusInterval: number | undefined;
  #lastAnswer = "";
  #lastReports = -1;
  #heldTasks = 0;
  /** Tasks seen running at least once, and those seen queued or running again after that. */
  readonly #seenRunning = new Set<number>();
  readonly #reruns = new Set<number>();
  #wake: (() => void) | undefined;
  /** The status round under way, if any. */
  #asking: Promise<void> | undefined;
  /** A wake that came while the wait was not sleeping: the next sleep ends at once. */
  #woken = false;

  constructor(options: WaitOptions) {
    this.#options = options;
    if (options.jobJustSubmitted) this.#lastStatus = this.#started;
  }

  wake(): void {
    if (this.#wake) this.#wake();
    else this.#woken = true;
  }

  /** Reports progress; resolves with the final progress once every task has reported. */
  async countReports(): Promise<MapProgress | undefined> {
    const { store, request, tasks, attempt = 1, onProgress, scheduler, job } = this.#options;
    const counts = await store.counts(request);
    if (counts.results + counts.errors !== this.#lastReports) {
      this.#lastReports = counts.results + counts.errors;
      this.#statusInterval = undefined;
    }
    const progress: MapProgress = {
      request,
      tasks,
      results: counts.results,
      errors: counts.errors,
      queued: this.#queued.size,
      running: this.#running,
      elapsedMs: Date.now() - this.#started,
      attempt,
    };
    if (counts.results + counts.errors < tasks) {
      onProgress?.(progress);
      return undefined;
    }
    // Every argument has its report, so what the scheduler still holds is of no use: tasks in
    // an error state would sit in its queue for ever, queued tasks and a re-run of a task that
    // already reported (a scheduler that reschedules it) would only report again. A task seen
    // running for the first time is ending after its last report: cancelling it costs a round
    // trip to the scheduler and changes nothing. Not so where tasks claim: the later tasks,
    // whose work was claimed, may start at any time, and one that starts once the server is
    // gone waits for it for the whole first-contact window.
    if (this.#leftOver() && scheduler && job) await scheduler.cancel(job).catch(() => {});
    const final = { ...progress, queued: 0, running: 0 };
    onProgress?.(final);
    return final;
  }

  /**
   * Asks the scheduler for the tasks' states, when it is time to: at its interval while the
   * states or the reports change, less and less often while nothing does (a cluster's admins
   * do not like tools that poll hard). The wait goes on meanwhile (a status round takes half a
   * second on the test cluster, and the last report would wait behind it): the answer is taken
   * in when it comes, and wakes the wait. Resolves once it is taken in.
   */
  askScheduler(): Promise<void> {
    const { scheduler, job } = this.#options;
    if (this.#asking) return this.#asking;
    const base = this.#options.statusIntervalMs ?? scheduler?.statusIntervalMs ?? 2000;
    const interval = this.#statusInterval ?? base;
    if (!scheduler || !job || Date.now() - this.#lastStatus < interval) return Promise.resolve();
    this.#lastStatus = Date.now();
    // A scheduler that cannot be asked now (a dropped connection, a busy qmaster) is asked
    // again next time; reports keep arriving meanwhile.
    this.#asking = scheduler
      .status(job)
      .catch(() => undefined)
      .then((states) => {
        this.#asking = undefined;
        this.#takeStates(states, base, interval);
        this.wake();
      });
    return this.#asking;
  }

  #takeStates(states: Map<number, TaskState> | undefined, base: number, interval: number): void {
    this.#queued.clear();
    this.#running = 0;
    for (const [number, state] of states ?? []) {
      if ((state.state === "queued" && !state.error) || state.state === "running") {
        if (state.state === "running") this.#running++;
        else this.#queued.add(number);
        const rescheduled =
          state.state === "queued" ? this.#seenRunning.has(number) : this.#ended.has(number);
        if (rescheduled) this.#reruns.add(number);
        if (state.state === "running") this.#seenRunning.add(number);
        // Back in the queue or running again (rescheduled): not ended after all.
        this.#ended.delete(number);
        this.#firstSeenEnded.delete(number);
      } else if (!this.#settled.has(number)) {
        this.#ended.set(number, state);
      }
    }
    const answer = states ? `${this.#queued.size}/${this.#running}/${this.#ended.size}` : "?";
    const max = Math.max(base, this.#options.maxStatusIntervalMs ?? 6000);
    this.#statusInterval = answer === this.#lastAnswer ? Math.min(max, interval * 1.5) : base;
    this.#lastAnswer = answer;
  }

  /**
   * Runs the wait's `collect`, when it has one: when `now`, or once the scheduler's interval
   * has passed since the last.
   */
  async collect(now: boolean): Promise<void> {
    const { collect, scheduler } = this.#options;
    const interval = this.#options.statusIntervalMs ?? scheduler?.statusIntervalMs ?? 2000;
    if (!collect || (!now && Date.now() - this.#lastCollect < interval)) return;
    this.#lastCollect = Date.now();
    await collect().catch(() => undefined);
  }

  /** Settles each task seen ended as soon as its grace has passed, not at the next status. */
  async settleEnded(): Promise<void> {
    // What a task that ended spooled is brought home before it can be recorded as dead.
    if ([...this.#ended.keys()].some((number) => this.#isDue(number))) await this.collect(true);
    for (const [number, state] of this.#ended) {
      if (this.#settled.has(number)) this.#ended.delete(number);
      else await this.#settleEndedTask(number, state);
    }
  }

  /**
   * Cancels the tasks that the server says can find no work (every task of theirs claimed by
   * another array task), once, where the scheduler can cancel some of a job's tasks: else each
   * would start as a slot frees, take it and end at once, or be cancelled with the job once
   * every report is in, on the way to the map's end. A cancel that fails is tried next round.
   */
  async cancelIdle(): Promise<void> {
    const { idleTasks, scheduler, job, layout, taskOffset = 0 } = this.#options;
    if (!idleTasks || !scheduler?.cancelTasks || !job || taskOffset !== 0) return;
    if (layout.claims === undefined) return;
    if (this.#idleCancelled.size > 0) return;
    const idle = (await idleTasks()).filter(
      (task) => task <= job.tasks && !this.#settled.has(task) && !this.#ended.has(task),
    );
    if (idle.length === 0) return;
    await scheduler.cancelTasks(job, idle).then(
      () => {
        for (const task of idle) this.#idleCancelled.add(task);
      },
      () => {},
    );
  }

  /** Sleeps until the next count, or until a report or an abort wakes it. */
  async sleep(): Promise<void> {
    // The last report may have come during this round (a status round takes half a second):
    // sleeping through it would keep the map from ending for a whole interval.
    if (this.#woken) {
      this.#woken = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.#options.countIntervalMs ?? 1000);
      // Reports wake it one by one: the first of a turn's ends the sleep, the rest find none.
      this.#wake = () => {
        this.#wake = undefined;
        clearTimeout(timer);
        resolve();
      };
    });
    this.#wake = undefined;
  }

  /** Whether the job may hold tasks still to run once every argument has its report. */
  #leftOver(): boolean {
    if (this.#heldTasks > 0 || this.#reruns.size > 0) return true;
    if ([...this.#queued].some((task) => !this.#idleCancelled.has(task))) return true;
    // Where tasks claim, a task whose work was claimed may start at any time, unless it was
    // cancelled as idle: then every other task has started, and is ending or has ended.
    const { layout, job } = this.#options;
    if (layout.claims === undefined || job === undefined || this.#idleCancelled.size > 0) {
      return false;
    }
    return new Set([...this.#settled, ...this.#ended.keys()]).size < job.tasks;
  }

  /** Whether the task seen ended has had its grace (and so is settled this round). */
  #isDue(number: number): boolean {
    const state = this.#ended.get(number);
    if (state === undefined || this.#settled.has(number)) return false;
    const { reportGraceMs = 3000, unknownGraceMs = 15_000 } = this.#options;
    const seen = this.#firstSeenEnded.get(number) ?? Date.now();
    const grace =
      state.state === "finished" ? reportGraceMs : state.state === "queued" ? 0 : unknownGraceMs;
    return Date.now() - seen >= grace;
  }

  async #settleEndedTask(number: number, state: TaskState): Promise<void> {
    if (!this.#firstSeenEnded.has(number)) this.#firstSeenEnded.set(number, Date.now());
    if (!this.#isDue(number)) return;
    this.#settled.add(number);
    if (state.state === "queued") this.#heldTasks++;
    const task = number + (this.#options.taskOffset ?? 0);
    const missing = await this.#unreportedOf(taskIndices(await this.#layoutAt(task), task));
    if (missing.length > 0) await this.#recordDeath(number, state, missing);
  }

  async #recordDeath(number: number, state: TaskState, missing: number[]): Promise<void> {
    const { store, request, job, onDied } = this.#options;
    const { kind, cause } = deathOf(state);
    const text = `Task ${number} of job ${job?.id ?? "?"} ended without reporting a result for these arguments [${kind}]: ${cause}.`;
    const died: number[] = [];
    // Provisional: the worker may have left its reports in its output (a server it could not
    // reach), and a real report, live or recovered, replaces this inferred one.
    for (const index of missing) {
      if (await store.putError(request, index, text, { provisional: true })) died.push(index);
    }
    if (died.length > 0) onDied?.(died, kind, text);
  }

  /** The layout with the claims as they are now, task `task` closed to claims first. */
  async #layoutAt(task: number): Promise<TaskLayout> {
    const { layout, settleClaims, store, request, tasks } = this.#options;
    if (layout.claims === undefined) return layout;
    const claims =
      (await settleClaims?.(task)) ??
      layoutOf((await store.getRequest(request)).meta, tasks).claims;
    return claims === undefined ? layout : { ...layout, claims };
  }

  /** The indices without a report, asking the store once per run of consecutive indices. */
  async #unreportedOf(indices: readonly number[]): Promise<number[]> {
    const { store, request } = this.#options;
    const missing: number[] = [];
    for (const { first, count } of indexRuns(indices)) {
      missing.push(...(await store.unreported(request, first, count)));
    }
    return missing;
  }
}

/** What a task that ended without reporting died of, and why, for its error. */
function deathOf(state: TaskState): { kind: DeathKind; cause: string } {
  if (state.state === "finished") return { kind: state.kind, cause: describeEnd(state) };
  if (state.state === "queued") {
    return {
      kind: "never-started",
      cause: `the scheduler holds it in an error state and will not run it: ${state.error}`,
    };
  }
  return {
    kind: "unknown",
    cause: "the scheduler no longer knows it and has no accounting record of how it ended",
  };
}

function describeEnd(state: Extract<TaskState, { state: "finished" }>): string {
  const parts = [state.reason];
  if (state.exitCode !== null && !state.reason.includes(String(state.exitCode))) {
    parts.push(`exit status ${state.exitCode}`);
  }
  if (state.failed && !state.reason.includes(state.failed.text)) {
    parts.push(`scheduler failure ${state.failed.code}: ${state.failed.text}`);
  }
  if (state.maxvmemBytes !== undefined) {
    parts.push(`peak memory ${(state.maxvmemBytes / 1024 ** 2).toFixed(1)} MiB`);
  } else if (state.maxRssBytes !== undefined) {
    parts.push(`peak resident memory ${(state.maxRssBytes / 1024 ** 2).toFixed(1)} MiB`);
  }
  const worker = state.exitCode === null ? undefined : workerExits[state.exitCode];
  if (worker) parts.push(worker);
  return parts.join("; ");
}

/** What the worker's own exit statuses mean (WORKER_EXIT_CODES), for people. */
const workerExits: Record<number, string> = {
  [WORKER_EXIT_CODES.undelivered]:
    "the worker could not deliver its reports to the server (they are in the job's output: recover them with sheepdog recover)",
  [WORKER_EXIT_CODES.refused]:
    "the server refused the worker (its request or token was not accepted)",
  [WORKER_EXIT_CODES.impostor]:
    "the worker met a server on the port that could not prove it holds the request's secret (another program on the port?), so it ran nothing it sent; its reports, if any, are in the job's output for sheepdog recover",
  [WORKER_EXIT_CODES.unreachable]:
    'the worker never reached this machine\'s server on any of its routes: if the cluster\'s nodes cannot reach this machine, set connect to "relay" or "auto" (the default)',
};
