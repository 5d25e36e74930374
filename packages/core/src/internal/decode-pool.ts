import type { Worker } from "node:worker_threads";
import { SheepdogError } from "@sheepdog/contracts";
import type { DecodeBatch, DecodeWorkerMessage } from "./decode-worker.js";
import { startDecodeWorker } from "./decode-worker.js";
import { uncheckedMessage, undecodableMessage } from "./result-check.js";
import { source } from "./source.js";

/**
 * The most bytes of pickles sent to a worker in one batch (a larger pickle goes alone): a
 * megabyte decodes within a second however it is built, unless it is quadratic.
 */
export const BATCH_BYTES = 1 << 20;

/** Options of {@link DecodePool}. */
export interface DecodePoolOptions {
  /** The most worker threads at once (each decodes one batch at a time). */
  workers: number;
  /** How long one pickle may take; past it, the worker is ended and the result kept as an error. */
  deadlineMs: number;
  /** Starts a decode worker. @default startDecodeWorker */
  start?: () => Worker;
}

interface Job {
  bytes: Uint8Array;
  resolve: (reason: string | undefined) => void;
  reject: (error: unknown) => void;
  /** Sent in a batch of its own: its batch ran past the deadline or ended its worker. */
  alone: boolean;
}

/** A worker thread of the pool, and the batch it decodes. */
interface Slot {
  worker: Worker;
  /** Whether the worker has loaded the decoder. */
  started: boolean;
  batch: Job[];
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

/** The pickles of `jobs` one after another, and their lengths. */
function packed(jobs: readonly Job[]): DecodeBatch {
  const lengths = jobs.map((job) => job.bytes.byteLength);
  const bytes = new Uint8Array(lengths.reduce((sum, length) => sum + length, 0));
  let offset = 0;
  for (const job of jobs) {
    bytes.set(job.bytes, offset);
    offset += job.bytes.byteLength;
  }
  return { bytes, lengths };
}

/**
 * Decodes pickles on worker threads, so that a pickle built to be slow to decode never holds
 * the event loop. Pickles asked for together travel in one batch (one message each way);
 * workers start when first needed and never keep the program alive while idle. A pickle that
 * decodes past the deadline, or ends its worker (out of memory), is answered with the error to
 * keep, and the worker is replaced; the others of its batch are decoded again, each alone.
 */
export class DecodePool {
  readonly #workers: number;
  readonly #deadlineMs: number;
  readonly #start: () => Worker;
  readonly #queue: Job[] = [];
  readonly #slots = new Set<Slot>();
  #dispatching = false;
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
      this.#queue.push({ bytes, resolve, reject, alone: false });
      if (this.#dispatching) return;
      // After the caller's other decodes of this turn, so that they share a batch.
      this.#dispatching = true;
      queueMicrotask(() => {
        this.#dispatching = false;
        this.#dispatch();
      });
    });
  }

  /** Ends every worker; decodes not yet answered reject with `CLOSED`. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const error = closedError();
    for (const job of this.#queue.splice(0)) job.reject(error);
    const slots = [...this.#slots];
    for (const slot of slots) for (const job of this.#retire(slot)) job.reject(error);
    await Promise.allSettled(slots.map(({ worker }) => worker.terminate()));
  }

  /** Hands waiting pickles to idle workers, starting workers up to the pool's size. */
  #dispatch(): void {
    while (!this.#closed && this.#queue.length > 0) {
      const slot = this.#idleSlot();
      if (slot === undefined) return;
      this.#run(slot, this.#nextBatch());
    }
  }

  /** The waiting pickles that go next, in order: up to BATCH_BYTES, or one alone. */
  #nextBatch(): Job[] {
    const first = this.#queue.shift() as Job;
    const batch = [first];
    let bytes = first.bytes.byteLength;
    for (let next = this.#queue[0]; next !== undefined && !first.alone; next = this.#queue[0]) {
      if (next.alone || bytes + next.bytes.byteLength > BATCH_BYTES) break;
      bytes += next.bytes.byteLength;
      batch.push(this.#queue.shift() as Job);
    }
    return batch;
  }

  #idleSlot(): Slot | undefined {
    for (const slot of this.#slots) if (slot.batch.length === 0) return slot;
    return this.#slots.size < this.#workers ? this.#startSlot() : undefined;
  }

  #startSlot(): Slot {
    const worker = this.#start();
    const slot: Slot = { worker, started: false, batch: [], deadline: undefined, retired: false };
    worker.on("message", (message: DecodeWorkerMessage) => this.#answered(slot, message));
    worker.on("error", (error) => this.#stopped(slot, error));
    worker.on("exit", (code) => this.#stopped(slot, new Error(`it exited with code ${code}`)));
    this.#slots.add(slot);
    return slot;
  }

  #run(slot: Slot, batch: Job[]): void {
    slot.batch = batch;
    slot.worker.ref();
    slot.deadline = setTimeout(() => this.#expired(slot), this.#deadlineMs);
    // The post keeps its bytes (the store takes them next): the worker gets a copy.
    const message = packed(batch);
    slot.worker.postMessage(message, [message.bytes.buffer]);
  }

  /** The slot's batch, once it is taken off the slot; the worker stays for the next one. */
  #finish(slot: Slot): Job[] {
    const { batch } = slot;
    clearTimeout(slot.deadline);
    slot.batch = [];
    slot.deadline = undefined;
    slot.worker.unref();
    return batch;
  }

  /** The slot's batch, once the slot is out of the pool (its worker is being ended). */
  #retire(slot: Slot): Job[] {
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
    const { details } = message;
    for (const [i, job] of this.#finish(slot).entries()) {
      const detail = details[i];
      job.resolve(typeof detail === "string" ? undecodableMessage(detail) : undefined);
    }
    this.#dispatch();
  }

  #expired(slot: Slot): void {
    const batch = this.#retire(slot);
    void slot.worker.terminate();
    const why = `decoding it took longer than ${seconds(this.#deadlineMs)}`;
    this.#blame(batch, (job) => job.resolve(uncheckedMessage(why)));
  }

  /** The worker failed or ended by itself: out of memory while decoding, or unable to start. */
  #stopped(slot: Slot, error: Error): void {
    if (slot.retired) return;
    const batch = this.#retire(slot);
    void slot.worker.terminate();
    if (!slot.started) {
      const failure = new SheepdogError(
        "INTERNAL",
        source,
        `The thread that checks results could not start: ${error.message}. Check that @sheepdog/serialise is installed beside @sheepdog/core.`,
        { cause: error },
      );
      for (const job of batch) job.reject(failure);
      this.#dispatch();
      return;
    }
    const why = `decoding it stopped the thread that checks results: ${error.message}`;
    this.#blame(batch, (job) => job.resolve(uncheckedMessage(why)));
  }

  /**
   * The pickle of a batch of one is the cause (`answer` it); the pickles of a larger batch are
   * decoded again, each alone, first in line, to find which.
   */
  #blame(batch: Job[], answer: (job: Job) => void): void {
    const [only] = batch;
    if (batch.length === 1 && only !== undefined) {
      answer(only);
    } else {
      for (const job of batch) job.alone = true;
      this.#queue.unshift(...batch);
    }
    this.#dispatch();
  }
}
