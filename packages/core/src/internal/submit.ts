import { randomBytes } from "node:crypto";
import { setImmediate } from "node:timers/promises";
import type {
  CreatedRequest,
  FunctionSource,
  JobRef,
  RequestId,
  Scheduler,
  Store,
} from "@sheepdog/contracts";
import { parseResources, resourcesForTask, SheepdogError } from "@sheepdog/contracts";
import type { PickleProtocol, PyFunction } from "@sheepdog/serialise";
import { encodeTuple, functionSourceChecking, isPyFunction } from "@sheepdog/serialise";
import type { SheepdogServer } from "@sheepdog/server";
import { workerProgram } from "@sheepdog/worker-py";
import type { ResolvedRunSettings } from "../config.js";
import { schedulerOptionSettings } from "../config.js";
import type { AttemptOptions } from "../types.js";
import type { ClusterLease, Context } from "./context.js";
import { encodeNamespace } from "./namespace.js";
import { PackedPickles } from "./packed-pickles.js";
import { markCancelled } from "./request-meta.js";
import type { WorkerRoutes } from "./routes.js";
import { openRoutes } from "./routes.js";
import { source } from "./source.js";
import type { StagedPaths } from "./staging.js";
import { createStagedDirectory, stagedPathsOf, stagePack } from "./staging.js";
import { privateDirectory, removeTokenFile, writeTokenFile } from "./token-file.js";
import { runsOnThisMachine, workerHost } from "./worker-host.js";

/** What a submission runs with, beyond the function and its arguments. */
export interface SubmitOptions {
  ns?: Record<string, unknown> | undefined;
  signal?: AbortSignal | undefined;
  /** `map` retries: checked against the store before anything is submitted. */
  retries?: number;
  /** Say which route the workers take back to this machine, and why. */
  verbose?: boolean | undefined;
  /**
   * Stage the tasks on the cluster and let the workers spool what the server cannot take, so
   * the job needs this process neither to start its tasks nor to keep their results.
   */
  detach?: boolean | undefined;
  /**
   * Nobody waits for the job (`mapAsync`, a retry from the dashboard): the server only serves
   * the request until every task has reported. Its tasks then claim no others': nothing would
   * cancel the later array tasks whose work was claimed, and one that started after the server
   * closed would wait for it for the whole first-contact window, holding a slot.
   */
  withoutWait?: boolean | undefined;
  /** The scheduler to submit to (a retry's: its request's), instead of the configuration's. */
  scheduler?: string | undefined;
  /**
   * Settles when the function's syntax check does (a local Python's start can take longer
   * than reaching the cluster, so it runs meanwhile): nothing is stored or submitted before it
   * passes, and its error comes before any other.
   */
  checked?: Promise<void> | undefined;
  /** The chunk size when the settings give none, chosen by the caller instead of by slots. */
  chunkSize?: number | undefined;
  /**
   * Told once the store has the request's arguments: before its job is submitted, or, where the
   * store tells the request's id first (`onCreating`), perhaps after.
   */
  onStored?: (() => void) | undefined;
  /**
   * The job is submitted once this settles (however it settles): a stream's windows are queued
   * in their order, so that the scheduler runs the first arguments first.
   */
  submitAfter?: Promise<unknown> | undefined;
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
  /** The server's URL for workers that reach this machine directly. */
  url: string;
  /** The routes the workers take back to the server (with a cluster); close them at the end. */
  routes: WorkerRoutes | undefined;
  /**
   * The file the workers read the token from (on the cluster, relative to the home directory
   * unless absolute), once the first job is submitted; see {@link removeTokenFile}.
   */
  tokenFile: string | undefined;
  /** The sizes a task's answer is made of, for the workers' {@link maxReplyBytes}. */
  sizes: RequestSizes;
  /** Where a detached request's tasks are staged and its reports spooled. */
  staged: StagedPaths | undefined;
  /**
   * Whether the first attempt's tasks claim the tasks whose array task has not started (see
   * {@link claimsAllowed}); the request's meta then has `claims`.
   */
  claims: boolean;
}

/** The bytes of a request's parts, as the server sends them to a task. */
export interface RequestSizes {
  func: number;
  ns: number;
  /** The largest pickled argument tuple. */
  largestArgs: number;
  /** All pickled argument tuples together. */
  totalArgs: number;
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
  const checking = checkFunction(f);
  const list = checkArgs(args);
  const protocol = settings.pickleProtocol;
  const pickles = {
    *[Symbol.iterator]() {
      for (let i = 0; i < list.length; i++)
        yield pickleTuple(list[i] as readonly unknown[], i, protocol);
    },
  };
  return submitChecked(context, settings, checking, list.length, pickles, options);
}

/**
 * As {@link submit}, for argument tuples pickled already, with the settings' protocol (a
 * stream's window, pickled as it was read).
 */
export async function submitPickled(
  context: Context,
  settings: ResolvedRunSettings,
  f: PyFunction,
  pickles: PackedPickles,
  options: SubmitOptions,
): Promise<Submitted> {
  return submitChecked(context, settings, checkFunction(f), pickles.count, pickles, options);
}

async function submitChecked(
  context: Context,
  settings: ResolvedRunSettings,
  checking: FunctionChecking,
  tasks: number,
  pickles: Iterable<Uint8Array>,
  options: SubmitOptions,
): Promise<Submitted> {
  const work: EncodedWork = {
    func: new TextEncoder().encode(JSON.stringify(checking.source)),
    ns: encodeNamespace(options.ns ?? {}, settings.pickleProtocol),
    tasks,
    args: pickles,
  };
  return submitEncoded(context, settings, work, { ...options, checked: checking.checked });
}

/** A request's parts, encoded as the store keeps them. */
export interface EncodedWork {
  func: Uint8Array;
  ns: Uint8Array;
  tasks: number;
  /**
   * The pickled argument tuples, `tasks` of them, read twice: measured (see `argSizes`), then
   * stored.
   */
  args: Iterable<Uint8Array>;
  /** More for the request's meta (what it was made from). */
  meta?: Record<string, unknown>;
}

/** As {@link submit}, for a request whose parts are encoded already (a retry of stored ones). */
export async function submitEncoded(
  context: Context,
  settings: ResolvedRunSettings,
  work: EncodedWork,
  options: SubmitOptions,
): Promise<Submitted> {
  const protocol = settings.pickleProtocol;
  checkStore(context, options.retries ?? 0);
  if (options.signal?.aborted) throw abortError(options.signal);

  const lease =
    work.tasks > 0
      ? await context
          .openCluster(options.scheduler)
          .catch(async (error: unknown) => Promise.reject(await firstError(options, error)))
      : undefined;
  // What the scheduler will ask the cluster at submission is read while the rest gets ready
  // (a job has at most a task per call).
  void lease?.cluster.scheduler.prepare?.({ mostTasks: work.tasks });
  // The server starts, and the workers' routes back to it open, while the syntax check and the
  // request's storing run: neither stores nor submits anything.
  const serverStarting = context.runtime.server(context, settings.port);
  serverStarting.catch(() => {});
  const reaching = reachServer(serverStarting, settings, lease, options.verbose);
  reaching.catch(() => {});
  // The job directory is made and checked while the request is stored, and the token written
  // there while the routes open: neither waits in line before qsub.
  const jobDirectory = lease && privateDirectory(lease.cluster.remote, settings.sshDir);
  jobDirectory?.catch(() => {});
  let stored: Promise<RequestId> | undefined;
  let tokenWriting: Promise<string> | undefined;
  let job: JobRef | undefined;
  try {
    if (lease) checkAttemptOptions(lease.cluster.scheduler, attemptOptionsOf(settings));
    // An automatic chunk size is made from the cluster's slots, asked while the arguments are
    // measured and stored: it goes in the meta before any task is served, as nothing reads it
    // sooner.
    const sizing = settings.chunkSize ?? options.chunkSize ?? chunkSizeFor(work.tasks, lease);
    const chosenSize = typeof sizing === "number" ? sizing : undefined;
    const layoutMeta = (chunkSize: number) => layoutOf(work.tasks, chunkSize, settings, options);
    const sizes = await argSizes(work.args);
    await options.checked;
    const storing = startStoring(context.store, work, asMeasured(work.args, sizes), {
      meta: {
        connection: context.connection,
        pickleProtocol: protocol,
        ...(chosenSize !== undefined && layoutMeta(chosenSize)),
        ...work.meta,
      },
      // A detached request's tasks are staged from the store, so its job waits for all of it.
      early: lease !== undefined && !options.detach,
    });
    stored = storing.stored;
    const { id: request, token, early: queuedEarly } = await storing.created;
    const name = `sheepdog_${request}_${randomBytes(4).toString("hex")}`;
    tokenWriting =
      lease && jobDirectory?.then((dir) => writeTokenFile(lease.cluster.remote, dir, name, token));
    tokenWriting?.catch(() => {});
    const chunkSize = await sizing;
    const layout = chosenSize === undefined ? layoutMeta(chunkSize) : undefined;
    const ready = layoutWritten(context.store, storing.stored, layout, options.onStored);
    stored = ready;
    const claims = claimsFor(work.tasks, chunkSize, settings, options);
    const { server, url, routes } = await reaching;
    const submitted: Submitted = {
      context,
      settings,
      request,
      token,
      tasks: work.tasks,
      chunkSize,
      server,
      name,
      job: undefined,
      lease,
      url,
      routes,
      tokenFile: undefined,
      sizes: { func: work.func.byteLength, ns: work.ns.byteLength, ...sizes },
      staged: undefined,
      claims,
    };
    if (!lease || !routes || !queuedEarly) await ready;
    if (!lease || !routes) return submitted;
    // The job is queued while the store writes; the server holds its tasks' calls until then.
    server.holdRequest(request, ready);
    submitted.tokenFile = await tokenWriting;
    await options.submitAfter?.catch(() => {});
    if (options.signal?.aborted) throw abortError(options.signal);
    if (options.detach) submitted.staged = stagedPathsOf(settings.sshDir, submitted.name);
    submitted.job = job = await submitJob(submitted, {
      name: submitted.name,
      tasks: Math.ceil(work.tasks / chunkSize),
      callsPerTask: chunkSize,
      options: attemptOptionsOf(settings),
      taskOffset: 0,
    });
    await ready;
    await context.store.updateMeta(request, {
      job: submitted.job,
      jobs: [submitted.job],
      port: server.port,
      ...(routes.relay !== undefined && { relay: routes.relay }),
      route: routes.urls[0] === url ? "direct" : "relay",
      ...(submitted.staged && { staged: submitted.staged }),
    });
    return submitted;
  } catch (error) {
    await undoSubmission(context, options, { lease, job, tokenWriting, stored });
    const reached = await reaching.catch(() => undefined);
    await reached?.routes?.close();
    await lease?.release();
    await (reached?.server ?? (await serverStarting.catch(() => undefined)))?.close();
    throw await firstError(options, error);
  }
}

/** The request's layout, as its meta keeps it: the chunk size, and whether its tasks claim. */
function layoutOf(
  tasks: number,
  chunkSize: number,
  settings: ResolvedRunSettings,
  options: SubmitOptions,
): Record<string, unknown> {
  return { chunkSize, ...(claimsFor(tasks, chunkSize, settings, options) && { claims: {} }) };
}

/**
 * Resolves with the request once the store has it and its layout (written now, unless it went
 * in with the request): its tasks are served from then on.
 */
function layoutWritten(
  store: Store,
  stored: Promise<RequestId>,
  layout: Record<string, unknown> | undefined,
  onStored: (() => void) | undefined,
): Promise<RequestId> {
  const ready = stored.then(async (request) => {
    if (layout) await store.updateMeta(request, layout);
    onStored?.();
    return request;
  });
  ready.catch(() => {});
  return ready;
}

/** What a submission that failed had done on the cluster and in the store, so far. */
interface SubmissionSoFar {
  lease: ClusterLease | undefined;
  job: JobRef | undefined;
  tokenWriting: Promise<string> | undefined;
  /** Resolves with the request once the store has it; rejects if its write failed. */
  stored: Promise<RequestId> | undefined;
}

/**
 * Cancels the job of a submission that failed, removes its token file and marks its request:
 * nothing of it runs on, and no listing shows it in progress.
 */
async function undoSubmission(
  context: Context,
  options: SubmitOptions,
  { lease, job, tokenWriting, stored }: SubmissionSoFar,
): Promise<void> {
  // A job whose request could not be told of it (its meta not written) would run for a map
  // that has failed, and no one could find it to cancel it later.
  if (job !== undefined) await lease?.cluster.scheduler.cancel(job).catch(() => {});
  // No task of this request runs (none was submitted, or its job was just cancelled).
  const tokenFile = await tokenWriting?.catch(() => undefined);
  await removeTokenFile({ lease, tokenFile });
  const created = await stored?.catch(() => undefined);
  if (created !== undefined) {
    await markCancelled(context.store, created, options.signal?.aborted ? "interrupted" : "failed");
  }
}

/**
 * A request being stored: `created` resolves with its id and token as soon as the store tells
 * them (`early` when that was before the arguments were stored: with `onCreating`, where the
 * store offers it), `stored` with its id once the store has all of it.
 */
interface Storing {
  created: Promise<CreatedRequest & { early: boolean }>;
  stored: Promise<RequestId>;
}

function startStoring(
  store: Store,
  work: EncodedWork,
  args: Iterable<Uint8Array>,
  { meta, early }: { meta: Record<string, unknown>; early: boolean },
): Storing {
  // Assigned by the executor below, which runs at once.
  let creating!: Promise<CreatedRequest>;
  // Settled by whichever comes first: the store's early word, or its whole answer.
  const created = new Promise<CreatedRequest & { early: boolean }>((resolve, reject) => {
    creating = store.createRequest({
      func: work.func,
      ns: work.ns,
      args,
      meta,
      ...(early && { onCreating: ({ id, token }) => resolve({ id, token, early: true }) }),
    });
    creating.then(({ id, token }) => resolve({ id, token, early: false }), reject);
  });
  return { created, stored: creating.then(({ id }) => id) };
}

/** Tuples measured between two turns of the event loop (the SSH connection's answers wait). */
const measureSlice = 20_000;

/** How large a request's pickled argument tuples are. */
type ArgSizes = Pick<RequestSizes, "largestArgs" | "totalArgs">;

/**
 * The sizes of the argument tuples, which the job's workers are told (their `maxReplyBytes`)
 * before the store has the tuples: read from packed ones, else measured by pickling them once
 * and dropping the pickles.
 */
async function argSizes(args: Iterable<Uint8Array>): Promise<ArgSizes> {
  if (args instanceof PackedPickles) return { largestArgs: args.largest, totalArgs: args.bytes };
  const sizes: ArgSizes = { largestArgs: 0, totalArgs: 0 };
  let count = 0;
  for (const pickle of args) {
    sizes.largestArgs = Math.max(sizes.largestArgs, pickle.byteLength);
    sizes.totalArgs += pickle.byteLength;
    if (++count % measureSlice === 0) await setImmediate();
  }
  return sizes;
}

/**
 * `args` as the store reads them, each held to the sizes measured before: a tuple that the
 * caller changed meanwhile into a larger one could pass what the workers read, so it fails the
 * store's write (and the map) instead.
 */
function* asMeasured(args: Iterable<Uint8Array>, sizes: ArgSizes): Generator<Uint8Array> {
  let total = 0;
  let index = 0;
  for (const pickle of args) {
    total += pickle.byteLength;
    if (pickle.byteLength > sizes.largestArgs || total > sizes.totalArgs) {
      throw new SheepdogError(
        "INVALID_INPUT",
        source,
        `args[${index}] changed while the map was storing it. Leave the arguments as they are until the map has returned.`,
      );
    }
    index += 1;
    yield pickle;
  }
}

/**
 * Whether a first attempt of `tasks` calls in chunks of `chunkSize` lets its tasks claim
 * others': when there is more than one task, not when nobody waits for the job (see
 * `withoutWait`), and not for a detached request, whose tasks read their own from the staged
 * pack, which the server does not see (a claim could take a task that is running).
 */
function claimsFor(
  tasks: number,
  chunkSize: number,
  settings: ResolvedRunSettings,
  options: SubmitOptions,
): boolean {
  return (
    !options.detach &&
    !options.withoutWait &&
    tasks > chunkSize &&
    claimsAllowed(attemptOptionsOf(settings))
  );
}

/** The started server, its address for the workers, and (on a cluster) their routes to it. */
async function reachServer(
  serverStarting: Promise<SheepdogServer>,
  settings: ResolvedRunSettings,
  lease: ClusterLease | undefined,
  verbose: boolean | undefined,
): Promise<{ server: SheepdogServer; url: string; routes: WorkerRoutes | undefined }> {
  const server = await serverStarting;
  const url = `http://${await workerHost(settings, lease?.cluster)}:${server.port}`;
  if (!lease) return { server, url, routes: undefined };
  const routes = await openRoutes({
    connect: settings.connect,
    remote: lease.cluster.remote,
    server,
    direct: url,
    runsHere: runsOnThisMachine(lease.cluster),
  });
  if (verbose) process.stderr.write(`[sheepdog] workers reach this machine: ${routes.why}\n`);
  return { server, url, routes };
}

/** A syntax error is the one to fix first, whatever else went wrong meanwhile. */
async function firstError(options: SubmitOptions, error: unknown): Promise<unknown> {
  const syntax = await options.checked?.then(
    () => undefined,
    (failure: unknown) => failure,
  );
  return syntax ?? error;
}

/** One attempt's array job: `tasks` tasks, the request's tasks after `taskOffset`. */
export interface Attempt {
  name: string;
  tasks: number;
  /** The most calls one of its tasks runs, which its time limit is scaled by. */
  callsPerTask: number;
  options: AttemptOptions;
  taskOffset: number;
  /** Which attempt of the map it is: 1, then 2 for the first retry. @default 1 */
  number?: number;
}

/**
 * Whether a first attempt's tasks may claim the tasks whose array task has not started, and so
 * run more calls than their chunk (see `claims` in `wire.ts` of `@sheepdog/contracts`): not when
 * its tasks have a run-time limit, which a task running more calls could outlive. A time in
 * `resources` is one; so may be any of the scheduler's own options (`-l h_rt`, `--time`), which
 * core does not read, so any of them turns claiming off.
 */
export function claimsAllowed(options: AttemptOptions): boolean {
  return (
    options.geOpts.length === 0 &&
    options.slurmOpts.length === 0 &&
    parseResources(options.resources).timeSeconds === undefined
  );
}

/** What the configuration asks the first attempt to run with. */
export function attemptOptionsOf(settings: ResolvedRunSettings): AttemptOptions {
  return {
    geOpts: [...settings.geOpts],
    slurmOpts: [...settings.slurmOpts],
    resources: { ...settings.resources },
  };
}

/**
 * The options of `scheduler`'s own setting (`optionsSetting`); options given under another
 * scheduler's setting are an error that names both. A scheduler without such a setting (the
 * local one) takes none.
 */
export function schedulerOptions(scheduler: Scheduler, options: AttemptOptions): string[] {
  const own = scheduler.optionsSetting;
  if (own === undefined) return [];
  for (const setting of schedulerOptionSettings) {
    if (setting !== own && options[setting].length > 0) {
      throw new SheepdogError(
        "CONFIG_INVALID",
        source,
        `${setting} is set (${JSON.stringify(options[setting]).slice(0, 80)}), but the cluster's scheduler is ${scheduler.name}, which takes its options in ${own}. Move them to ${own}, in ${scheduler.name}'s words, or use resources: { memory, time, cpus, queue } which every scheduler reads.`,
      );
    }
  }
  return Object.hasOwn(options, own) ? (options[own as keyof AttemptOptions] as string[]) : [];
}

/** Checks an attempt's options and resources as the scheduler would, before any submission. */
export function checkAttemptOptions(scheduler: Scheduler, options: AttemptOptions): void {
  scheduler.checkOptions?.(schedulerOptions(scheduler, options));
  parseResources(options.resources);
}

/**
 * Submits one attempt's array job. The job's program holds no secret (schedulers copy job
 * scripts where every user of a node can read them): the first attempt writes the token to
 * a file only the user can read, which the workers of every attempt read.
 */
export async function submitJob(submitted: Submitted, attempt: Attempt): Promise<JobRef> {
  const { settings, lease } = submitted;
  if (!lease) throw new SheepdogError("INTERNAL", source, "A job needs a cluster.");
  const { scheduler, remote } = lease.cluster;
  const options = schedulerOptions(scheduler, attempt.options);
  const perCall = parseResources(attempt.options.resources);
  const memoryLimitBytes = scheduler.memoryLimitBytes?.(options) ?? perCall.memoryBytes;
  submitted.tokenFile ??= await writeTokenFile(
    remote,
    await privateDirectory(remote, settings.sshDir),
    submitted.name,
    submitted.token,
  );
  const stagedTasks = await stageAttempt(submitted, attempt);
  const [url, ...fallbackUrls] = submitted.routes?.urls ?? [submitted.url];
  const program = workerProgram({
    url: url as string,
    ...(fallbackUrls.length > 0 && { fallbackUrls }),
    // Through a relay, a worker that has not reached the server yet may be waiting for the
    // relay to come back (the SSH connection dropped): it keeps trying for the whole window.
    ...(submitted.routes?.relayed && { firstContactSeconds: settings.retryWindowSeconds }),
    tokenFile: submitted.tokenFile,
    request: submitted.request,
    pickleProtocol: settings.pickleProtocol,
    retryWindowSeconds: settings.retryWindowSeconds,
    maxReplyBytes: maxReplyBytes(submitted, attempt),
    maxBodyBytes: submitted.server.maxBodyBytes,
    ...(memoryLimitBytes !== undefined && { memoryLimitBytes }),
    ...(attempt.taskOffset > 0 && { taskOffset: attempt.taskOffset }),
    ...(attempt.taskOffset === 0 && submitted.claims && { claimTasks: true }),
    ...((attempt.number ?? 1) > 1 && { attempt: attempt.number }),
    ...(stagedTasks !== undefined && {
      stagedTasks,
      spoolDir: (submitted.staged as StagedPaths).spoolDir,
    }),
  });
  return scheduler.submit({
    name: attempt.name,
    tasks: attempt.tasks,
    program,
    shell: settings.shell,
    options,
    directory: settings.sshDir,
    resources: resourcesForTask(perCall, attempt.callsPerTask),
  });
}

/**
 * For a detached request, stages the attempt's tasks (creating the request's directory with the
 * first) and resolves with the pack's path; otherwise with nothing.
 */
async function stageAttempt(submitted: Submitted, attempt: Attempt): Promise<string | undefined> {
  const { staged, lease } = submitted;
  if (!staged || !lease) return undefined;
  const target = {
    context: submitted.context,
    request: submitted.request,
    name: submitted.name,
    staged,
    remote: lease.cluster.remote,
  };
  if (attempt.taskOffset === 0) await createStagedDirectory(target);
  return stagePack(target, attempt);
}

/**
 * The most bytes a task of `attempt` can be sent (its workers read no larger answer): the
 * frame header (room for a retry task's list of indices), the function, the namespace and the
 * task's arguments, at most `chunkSize` of the largest for the first attempt; a retry's tasks
 * are cut anew, so for a retry, at most all of them.
 */
export function maxReplyBytes(submitted: Submitted, attempt: Pick<Attempt, "taskOffset">): number {
  const { sizes, tasks, chunkSize } = submitted;
  const perTask = attempt.taskOffset === 0 ? Math.min(chunkSize, tasks) : tasks;
  const args = Math.min(sizes.totalArgs, perTask * sizes.largestArgs);
  const frames = 4 * (3 + perTask) + 256 + 24 * perTask;
  return frames + sizes.func + sizes.ns + args;
}

/**
 * The chunk size for `tasks` argument tuples when the user set none, asking the scheduler for
 * its slots only when the answer can matter (two tuples or fewer run one per task anyway).
 */
function chunkSizeFor(tasks: number, lease: ClusterLease | undefined): number | Promise<number> {
  const slots = lease?.cluster.scheduler.slots;
  if (tasks <= 2 || !lease || !slots) return 1;
  return slots.call(lease.cluster.scheduler).then(
    (count) => autoChunkSize(tasks, count),
    () => 1,
  );
}

/**
 * Argument tuples per array task when the user set none: about `tasksPerSlot` (two) tasks per
 * slot, so that small calls share a task (a task's dispatch costs the cluster about a second)
 * while the slots stay busy until the end.
 */
export function autoChunkSize(tasks: number, slots: number | undefined, tasksPerSlot = 2): number {
  if (slots === undefined || !(slots >= 1)) return 1;
  return Math.max(1, Math.ceil(tasks / (slots * tasksPerSlot)));
}

/** The pickle of argument tuple `args[index]`; one that cannot be pickled is named in the error. */
export function pickleTuple(
  tuple: readonly unknown[],
  index: number,
  protocol: PickleProtocol,
): Uint8Array {
  try {
    return encodeTuple(tuple, { protocol });
  } catch (error) {
    if (!SheepdogError.isInstance(error) || error.code !== "PICKLE_ENCODE") throw error;
    throw new SheepdogError(error.code, error.source, `args[${index}]: ${error.text}`, {
      cause: error,
      detail: error.detail,
    });
  }
}

/** A function's source, and its syntax check started (see {@link SubmitOptions.checked}). */
interface FunctionChecking {
  source: FunctionSource;
  checked: Promise<void>;
}

function checkFunction(f: PyFunction): FunctionChecking {
  if (!isPyFunction(f)) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      "The function must be Python: py`def f(x): ...` or pyFile(path, name) from @sheepdog/core.",
    );
  }
  const checking = functionSourceChecking(f);
  // Awaited only once the request is about to be stored: a failure before that (a wrong
  // argument) must not leave it unhandled.
  checking.checked.catch(() => {});
  return checking;
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
