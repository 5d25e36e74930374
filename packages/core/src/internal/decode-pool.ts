import type { Worker } from "node:worker_threads";
import { SheepdogError } from "@sheepdog/contracts";
import type { DecodeWorkerMessage } from "./decode-worker.js";
import { startDecodeWorker } from "./decode-worker.js";
import { uncheckedMessage, undecodableMessage } from "./result-check.js";
import { source } from "./source.js";

/** Options of {@link DecodePool}. */
export interface DecodePoolOptions {
  /** The most worker threads at once (each decodes one pickle at a time). */
  workers: number;
  /** How long one decode may take; past it, the worker is ended and the result kept as an error. */
  deadlineMs: number;
  /** Starts a decode worker. @default startDecodeWorker */
  start?: () => Worker;
}

interface Job {
  bytes: Uint8Array;
  resolve: (reason: string | undefined) => void;
  reject: (error: unknown) => void;
}

/** A worker thread of the pool, and the decode it runs. */
interface Slot {
  worker: Worker;
  /** Whether the worker has loaded the decoder. */
  started: boolean;
  job: Job | undefined;
  deadline: NodeJS.Timeout | undefined;
  /** Ended or ending: nothing more it says counts. */
  retired: boolean;
}

/** "30 s", "1.5 s". */
const seconds = (ms: number): string => `${ms / 1000} s`;

function closedError(): SheepdogError {
  return new SheepdogError(
    "CLOSED",
    source,
    "The Sheepdog instance that checks results is closed, so this result was not checked. Its worker will send it again to the next server.",
  );
}

/**
 * Decodes pickles on worker threads, so that a pickle built to be slow to decode never holds
 * the event loop. Workers start when first needed, one pickle at a time each (the others
 * wait in order), and never keep the program alive while idle. A decode past the deadline, or
 * one that ends its worker (out of memory), is answered with the error to keep, and the worker
 * is replaced.
 */
export class DecodePool {
  readonly #workers: number;
  readonly #deadlineMs: number;
  readonly #start: () => Worker;
  readonly #queue: Job[] = [];
  readonly #slots = new Set<Slot>();
  #closed = false;

  constructor(options: DecodePoolOptions) {
    this.#workers = options.workers;
    this.#deadlineMs = options.deadlineMs;
    this.#start = options.start ?? startDecodeWorker;
  }

  /**
   * Why `bytes` cannot be kept as a result (they do not decode, or could not be decoded in
   * time), or `undefined` when they decode. Rejects with `CLOSED` once the pool is closed, and
   * with `INTERNAL` when a worker cannot start.
   */
  decode(bytes: Uint8Array): Promise<string | undefined> {
    if (this.#closed) return Promise.reject(closedError());
    return new Promise((resolve, reject) => {
      this.#queue.push({ bytes, resolve, reject });
      this.#dispatch();
    });
  }

  /** Ends every worker; decodes not yet answered reject with `CLOSED`. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const error = closedError();
    for (const job of this.#queue.splice(0)) job.reject(error);
    const slots = [...this.#slots];
    for (const slot of slots) this.#retire(slot)?.reject(error);
    await Promise.allSettled(slots.map(({ worker }) => worker.terminate()));
  }

  /** Hands waiting pickles to idle workers, starting workers up to the pool's size. */
  #dispatch(): void {
    while (!this.#closed && this.#queue.length > 0) {
      const slot = this.#idleSlot();
      if (slot === undefined) return;
      this.#run(slot, this.#queue.shift() as Job);
    }
  }

  #idleSlot(): Slot | undefined {
    for (const slot of this.#slots) if (slot.job === undefined) return slot;
    return this.#slots.size < this.#workers ? this.#startSlot() : undefined;
  }

  #startSlot(): Slot {
    const worker = this.#start();
    const slot: Slot = {
      worker,
      started: false,
      job: undefined,
      deadline: undefined,
      retired: false,
    };
    worker.on("message", (message: DecodeWorkerMessage) => this.#answered(slot, message));
    worker.on("error", (error) => this.#stopped(slot, error));
    worker.on("exit", (code) => this.#stopped(slot, new Error(`it exited with code ${code}`)));
    this.#slots.add(slot);
    return slot;
  }

  #run(slot: Slot, job: Job): void {
    slot.job = job;
    slot.worker.ref();
    slot.deadline = setTimeout(() => this.#expired(slot), this.#deadlineMs);
    // The post keeps its bytes (the store takes them next): the worker gets a copy of its own.
    const copy = job.bytes.slice();
    slot.worker.postMessage(copy, [copy.buffer]);
  }

  /** The slot's job, once it is taken off the slot; the worker stays for the next one. */
  #finish(slot: Slot): Job | undefined {
    const job = slot.job;
    clearTimeout(slot.deadline);
    slot.job = undefined;
    slot.deadline = undefined;
    slot.worker.unref();
    return job;
  }

  /** The slot's job, once the slot is out of the pool (its worker is being ended). */
  #retire(slot: Slot): Job | undefined {
    slot.retired = true;
    this.#slots.delete(slot);
    return this.#finish(slot);
  }

  #answered(slot: Slot, message: DecodeWorkerMessage): void {
    if (slot.retired) return;
    if ("started" in message) {
      slot.started = true;
      return;
    }
    const { detail } = message;
    this.#finish(slot)?.resolve(detail === null ? undefined : undecodableMessage(detail));
    this.#dispatch();
  }

  #expired(slot: Slot): void {
    const job = this.#retire(slot);
    void slot.worker.terminate();
    job?.resolve(uncheckedMessage(`decoding it took longer than ${seconds(this.#deadlineMs)}`));
    this.#dispatch();
  }

  /** The worker failed or ended by itself: out of memory while decoding, or unable to start. */
  #stopped(slot: Slot, error: Error): void {
    if (slot.retired) return;
    const job = this.#retire(slot);
    void slot.worker.terminate();
    if (job !== undefined && slot.started) {
      job.resolve(
        uncheckedMessage(`decoding it stopped the thread that checks results: ${error.message}`),
      );
    } else if (job !== undefined) {
      job.reject(
        new SheepdogError(
          "INTERNAL",
          source,
          `The thread that checks results could not start: ${error.message}. Check that @sheepdog/serialise is installed beside @sheepdog/core.`,
          { cause: error },
        ),
      );
    }
    this.#dispatch();
  }
}
