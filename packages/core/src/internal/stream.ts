import { setImmediate } from "node:timers/promises";
import type { RequestId } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type { Dashboard } from "@sheepdog/dashboard";
import type { PickleProtocol, PyFunction } from "@sheepdog/serialise";
import { isPyFunction } from "@sheepdog/serialise";
import type { ResolvedRunSettings } from "../config.js";
import type { IndexedSettled, MapOptions, MapStreamOptions, StreamOrder } from "../types.js";
import type { Context } from "./context.js";
import { dashboardOption, openDashboard } from "./dashboard.js";
import { retryFailedTasks } from "./maps.js";
import { PackedPickles } from "./packed-pickles.js";
import { waitAndRetry } from "./run-map.js";
import { SharedLease } from "./shared-lease.js";
import { source } from "./source.js";
import type { OutcomeBatch } from "./stream-results.js";
import { pollSlice, WindowResults } from "./stream-results.js";
import { abortError, autoChunkSize, pickleTuple, submitPickled } from "./submit.js";

/** The values of {@link MapStreamOptions.order}. */
export const streamOrders = ["completion", "arguments"] as const satisfies readonly StreamOrder[];

/**
 * Argument tuples per window when `windowSize` is not given. A window costs its request, its
 * job's submission and its task's start whatever its size: two million trivial calls on the
 * test cluster took 14.8 and 15.1 s in windows of 200,000 against 17.0 and 16.8 s in windows
 * of 100,000, at no more memory (peaks 202 and 206 MB, against 221 and 225); four million in
 * windows of 400,000 were no faster than in windows of 200,000 (30.2 and 30.4 s).
 */
export const defaultWindowSize = 200_000;

/** Tuples read between two turns of the event loop while a window is read. */
const readSlice = 4096;

/**
 * How many windows may be running or waiting for their consumer at once: with
 * {@link windowTasksPerSlot}, about a task per slot, so the slots stay taken while the next
 * windows are read and submitted.
 */
const windowsInFlight = 4;

/**
 * Array tasks per slot in a window that another follows, when the settings give no chunk
 * size: a quarter (a task for every four slots), where a `map` has two. Each task costs its
 * slot a start, which waits for a pass of the scheduler (a second on the test cluster, longer
 * on many), and the worker's own start: two million trivial calls in tasks of 50,000 took
 * 21 to 23 s on the test cluster, in tasks of 100,000 17 to 18 s (four, five or six windows
 * in flight alike), with the same peak memory. The last window runs as a `map` does.
 */
const windowTasksPerSlot = 0.25;

/**
 * The least time between two polls of a running window that has handed out all it had, so an
 * outcome waits at most this long in the store. A poll asks the store about every task of the
 * window not yet handed out: polled at each post of its workers (2,000 reports each), two
 * million calls spent 1.4 s of the client's CPU in those reads alone (0.2 s once polled at most
 * every 200 ms).
 */
const pollIntervalMs = 200;

/** Where a stream runs: opened when its iteration starts. */
export interface StreamTarget {
  context: Context;
  settings: ResolvedRunSettings;
}

/**
 * `mapStream`: reads `args` a window at a time, submits each window as its own request (as
 * `map` does: chunks, retries, routes, the scheduler; over one cluster lease for the whole
 * stream), at most four at once, and yields each outcome as the store receives it. Leaving the
 * loop, an exception in it, or an abort cancels the jobs of the windows in flight and reads no
 * more arguments. It is the only generator between the consumer and the windows: each level
 * of `yield*` cost a million outcomes about 0.1 s more.
 */
export async function* mapStream<R>(
  open: () => Promise<StreamTarget>,
  f: PyFunction,
  args: Iterable<readonly unknown[]> | AsyncIterable<readonly unknown[]>,
  options: MapStreamOptions,
): AsyncGenerator<IndexedSettled<R>, void, undefined> {
  const { context, settings } = await open();
  const { order, windowSize } = checkStreamOptions(options);
  if (!isPyFunction(f)) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      "The function must be Python: py`def f(x): ...` or pyFile(path, name) from @sheepdog/core.",
    );
  }
  const reader = new ArgumentReader(args);
  const stream = new WindowedStream(context, settings, f, reader, options, order, windowSize);
  try {
    await stream.openDashboard();
    for (let batch = await stream.next(); batch !== undefined; batch = await stream.next()) {
      for (let i = 0; i < batch.length; i++) yield batch.at(i) as IndexedSettled<R>;
    }
  } finally {
    await stream.stop();
  }
}

/** The order and window size of a stream, checked. */
export function checkStreamOptions(options: MapStreamOptions): {
  order: StreamOrder;
  windowSize: number;
} {
  const order = options.order ?? "completion";
  if (!(streamOrders as readonly unknown[]).includes(order)) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `"order" must be "completion" or "arguments", not ${JSON.stringify(order)}.`,
    );
  }
  const windowSize = options.windowSize ?? defaultWindowSize;
  if (!Number.isSafeInteger(windowSize) || windowSize < 1) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `"windowSize" must be a whole number of argument tuples, at least 1, not ${JSON.stringify(windowSize)}. Give one such as 200000, or leave it out for ${defaultWindowSize}.`,
    );
  }
  return { order, windowSize };
}

/** The argument tuples of a stream, read on demand from an iterable or an async iterable. */
class ArgumentReader {
  readonly #iterator: Iterator<unknown> | undefined;
  readonly #asyncIterator: AsyncIterator<unknown> | undefined;
  /** Whether the iterator has ended (or failed): it is then not closed. */
  done = false;

  constructor(args: unknown) {
    const object = args !== null && (typeof args === "object" || typeof args === "function");
    if (object && Symbol.asyncIterator in args) {
      this.#asyncIterator = (args as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    } else if (object && Symbol.iterator in args) {
      this.#iterator = (args as Iterable<unknown>)[Symbol.iterator]();
    } else {
      throw new SheepdogError(
        "INVALID_INPUT",
        source,
        "args must be an iterable or an async iterable of argument tuples, like [[1, 2], [3, 4]].",
      );
    }
  }

  /**
   * Up to `max` tuples, fewer at the end or once `stopped()`, each pickled with `protocol` as
   * it is read; `first` is the index of the first, for errors. The event loop is let go every
   * {@link readSlice} tuples, so a long read holds up no post of the windows in flight.
   */
  async read(
    max: number,
    first: number,
    stopped: () => boolean,
    protocol: PickleProtocol,
  ): Promise<PackedPickles> {
    const pickles = new PackedPickles();
    while (pickles.count < max && !this.done && !stopped()) {
      if (pickles.count > 0 && pickles.count % readSlice === 0) await setImmediate();
      let step: IteratorResult<unknown> | undefined;
      try {
        step = this.#iterator ? this.#iterator.next() : await this.#asyncIterator?.next();
      } catch (error) {
        this.done = true;
        throw error;
      }
      if (!step || step.done) {
        this.done = true;
        break;
      }
      if (!Array.isArray(step.value)) {
        throw new SheepdogError(
          "INVALID_INPUT",
          source,
          `args[${first + pickles.count}] must be an array of positional arguments; wrap a single argument as [x].`,
        );
      }
      pickles.push(pickleTuple(step.value, first + pickles.count, protocol));
    }
    return pickles;
  }

  /** Ends an iterator that has not ended (its `finally` blocks run). */
  async close(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await (this.#iterator ? this.#iterator.return?.() : this.#asyncIterator?.return?.());
  }
}

/** One window: its tuples' request, its run, and its reader. */
interface Window {
  /** The index (in the whole stream) of its first tuple. */
  first: number;
  controller: AbortController;
  run: Promise<void>;
  /** Once its request exists. */
  results: WindowResults | undefined;
  request: RequestId | undefined;
  /** The store has its tuples (its job may still be being submitted). */
  stored: boolean;
  /** Its wait is over: every task has its outcome in the store. */
  ended: boolean;
  failure: { error: unknown } | undefined;
  /** Outcomes may have arrived since the last poll. */
  dirty: boolean;
  /** Reports counted at the last progress, to tell when new ones came. */
  reported: number;
  /** When its last poll that handed out all it had ended (`performance.now()`). */
  caughtUpAt: number;
  /** The consumer left (or another window failed): its job is cancelled even with `keepJob`. */
  stoppedByConsumer: boolean;
}

/** The windows of one stream, read, run and yielded. */
class WindowedStream {
  readonly #windows: Window[] = [];
  #reading: Promise<void> | undefined;
  #readFailure: { error: unknown } | undefined;
  /** The newest window's submission: the next window's job is submitted after it. */
  #lastSubmission: Promise<unknown> | undefined;
  #next = 0;
  #stopped = false;
  #woken = false;
  #wake: (() => void) | undefined;
  /** The current pass over the windows: those still to poll, and whether it found outcomes. */
  #pass: Window[] | undefined;
  #passFound = false;
  readonly #onAbort = () => this.#notify();
  /** Wakes the stream when a deferred poll is due (see {@link pollIntervalMs}). */
  #pollTimer: NodeJS.Timeout | undefined;
  #dashboard: Dashboard | undefined;
  /** The cluster every window submits to, opened once for the stream. */
  readonly #cluster: SharedLease;

  constructor(
    private readonly context: Context,
    private readonly settings: ResolvedRunSettings,
    private readonly f: PyFunction,
    private readonly reader: ArgumentReader,
    private readonly options: MapStreamOptions,
    private readonly order: StreamOrder,
    private readonly windowSize: number,
  ) {
    this.#cluster = new SharedLease(context);
    options.signal?.addEventListener("abort", this.#onAbort);
  }

  /** With the `dashboard` option, opens one on the store (its address on stderr). */
  async openDashboard(): Promise<void> {
    const wanted = dashboardOption(this.options.dashboard);
    if (wanted === undefined) return;
    const context = this.context;
    this.#dashboard = await openDashboard(
      context,
      async () => context,
      (target, id) => retryFailedTasks(target, this.settings, id),
      wanted,
    );
    process.stderr.write(`[sheepdog] dashboard: ${this.#dashboard.url}\n`);
  }

  /**
   * The next outcomes, window after window, as the order asks; undefined once every window's
   * are handed out. Each pass polls the windows (the oldest alone in argument order) and hands
   * out one window's batch per call; the oldest window leaves once it is over and exhausted.
   */
  async next(): Promise<OutcomeBatch | undefined> {
    for (;;) {
      if (this.#pass === undefined) {
        this.#throwIfFailed();
        this.#readAhead();
        const front = this.#windows[0];
        if (!front) {
          if (this.reader.done && !this.#reading) return undefined;
          await this.#event();
          continue;
        }
        this.#pass = this.order === "arguments" ? [front] : [...this.#windows];
        this.#passFound = false;
      }
      const window = this.#pass.shift();
      if (window !== undefined) {
        const batch = await this.#poll(window);
        if (batch !== undefined) return batch;
        continue;
      }
      // The front is the pass's own: windows join at the back, and leave only here.
      const front = this.#windows[0];
      this.#pass = undefined;
      if (front?.ended && front.results?.exhausted) this.#windows.shift();
      else if (!this.#passFound) await this.#event();
    }
  }

  /** A window's outcomes stored since its last poll, if it may have any and has. */
  async #poll(window: Window): Promise<OutcomeBatch | undefined> {
    if (!window.results || !(window.dirty || window.ended)) return undefined;
    const final = window.ended;
    const due = window.caughtUpAt + pollIntervalMs - performance.now();
    if (!final && due > 0) {
      this.#pollTimer ??= setTimeout(() => {
        this.#pollTimer = undefined;
        this.#notify();
      }, due);
      return undefined;
    }
    window.dirty = false;
    const batch = await window.results.poll(final);
    if (batch.length < pollSlice) window.caughtUpAt = performance.now();
    if (batch.length === 0) return undefined;
    window.dirty = true;
    this.#passFound = true;
    return batch;
  }

  /**
   * Cancels the jobs of the windows in flight (as `cancelRequest` does), reads no more
   * arguments, ends the arguments' iterator and closes the dashboard. Resolves once every
   * window has released its cluster.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#pollTimer);
    this.options.signal?.removeEventListener("abort", this.#onAbort);
    await this.#reading;
    const aborted = this.options.signal?.aborted === true;
    for (const window of this.#windows) {
      if (window.ended || window.failure) continue;
      // An abort leaves the jobs to keepJob; a consumer that left wants nothing more of them.
      if (!aborted) window.stoppedByConsumer = true;
      window.controller.abort(
        new SheepdogError("ABORTED", source, "The stream was left before its end."),
      );
    }
    await Promise.allSettled(this.#windows.map((window) => window.run));
    this.#windows.length = 0;
    await this.reader.close().catch(() => {});
    await this.#cluster.release();
    await this.#dashboard?.close();
  }

  #throwIfFailed(): void {
    if (this.options.signal?.aborted) throw abortError(this.options.signal);
    if (this.#readFailure) throw this.#readFailure.error;
    for (const window of this.#windows) if (window.failure) throw window.failure.error;
  }

  /**
   * Starts reading the next window when fewer than four are in flight, none is being read, and
   * the newest one's tuples are stored or its run is over. Its job's submission (a round trip
   * to the cluster, 0.1 to 0.7 s on the test cluster) goes on while the next is read.
   */
  #readAhead(): void {
    if (this.#reading || this.reader.done || this.#stopped) return;
    if (this.#windows.length >= windowsInFlight) return;
    const newest = this.#windows.at(-1);
    if (newest && !newest.stored && !newest.ended && !newest.failure) return;
    this.#reading = this.#readWindow()
      .catch((error: unknown) => {
        this.#readFailure = { error };
      })
      .finally(() => {
        this.#reading = undefined;
        this.#notify();
      });
  }

  /**
   * Reads a window's tuples and starts its run. The next window is read once they are stored
   * (see {@link #readAhead}): the tuples of one window at most are held at a time.
   */
  async #readWindow(): Promise<void> {
    const first = this.#next;
    const holder: { pickles: PackedPickles | undefined } = {
      pickles: await this.reader.read(
        this.windowSize,
        first,
        () => this.#stopped,
        this.settings.pickleProtocol,
      ),
    };
    const count = holder.pickles?.count ?? 0;
    if (count === 0 || this.#stopped) return;
    this.#next += count;
    const window: Window = {
      first,
      controller: new AbortController(),
      run: Promise.resolve(),
      results: undefined,
      request: undefined,
      stored: false,
      ended: false,
      failure: undefined,
      dirty: false,
      reported: 0,
      caughtUpAt: Number.NEGATIVE_INFINITY,
      stoppedByConsumer: false,
    };
    window.run = this.#runWindow(window, holder).then(
      () => {
        window.ended = true;
        this.#notify();
      },
      (error: unknown) => {
        window.failure = { error };
        this.#notify();
      },
    );
    this.#windows.push(window);
  }

  /** Submits a window's tuples as a request and waits for it, as `map` does. */
  async #runWindow(window: Window, holder: { pickles: PackedPickles | undefined }): Promise<void> {
    const { settings, options } = this;
    const context = this.#cluster.context;
    await context.runtime.interruptible(async (interrupt) => {
      const signal = AbortSignal.any([
        window.controller.signal,
        interrupt,
        ...(options.signal ? [options.signal] : []),
      ]);
      const pickles = holder.pickles ?? new PackedPickles();
      const chunkSize = await this.#chunkSize(pickles.count);
      const submitting = submitPickled(context, settings, this.f, pickles, {
        ns: options.ns,
        signal,
        retries: settings.retries,
        chunkSize,
        onStored: () => {
          // The window keeps none of its tuples now, and the next may be read.
          pickles.clear();
          holder.pickles = undefined;
          window.stored = true;
          this.#notify();
        },
        submitAfter: this.#lastSubmission,
      });
      this.#lastSubmission = submitting;
      const submitted = await submitting;
      window.request = submitted.request;
      window.results = new WindowResults(
        {
          store: context.store,
          request: submitted.request,
          first: window.first,
          tasks: submitted.tasks,
          errorsFinal: settings.retries === 0,
        },
        this.order,
      );
      this.#notify();
      await waitAndRetry(submitted, this.#waitOptions(window), signal);
    });
  }

  /**
   * A window's chunk size when the settings give none, from the slots asked once (undefined:
   * as `map` chooses without them).
   */
  async #chunkSize(tuples: number): Promise<number | undefined> {
    if (this.settings.chunkSize !== undefined || tuples <= 2) return undefined;
    const followed = !this.reader.done && tuples === this.windowSize;
    const slots = await this.#cluster.slots();
    if (slots === undefined) return undefined;
    return followed
      ? autoChunkSize(tuples, slots, windowTasksPerSlot)
      : autoChunkSize(tuples, slots);
  }

  /** What a window's wait runs with: progress that marks it for a poll, retries, keepJob. */
  #waitOptions(window: Window): MapOptions {
    const keepJob = this.options.keepJob === true;
    const { onProgress, retryWith } = this.options;
    return {
      ...(retryWith && { retryWith }),
      get keepJob() {
        return keepJob && !window.stoppedByConsumer;
      },
      onProgress: (progress) => {
        const reported = progress.results + progress.errors;
        if (reported !== window.reported) {
          window.reported = reported;
          window.dirty = true;
          this.#notify();
        }
        onProgress?.(progress);
      },
    };
  }

  #notify(): void {
    this.#woken = true;
    this.#wake?.();
  }

  /** Resolves at the next event: new outcomes, a window read or ended, a failure, an abort. */
  async #event(): Promise<void> {
    if (!this.#woken) {
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
    this.#woken = false;
  }
}
