import { availableParallelism } from "node:os";
import { DecodePool } from "./decode-pool.js";
import { undecodableReason } from "./result-check.js";

/**
 * The largest result decoded on the event loop; larger ones go to a worker thread. The slowest
 * pickles of this size measured on a shared 2-core machine took 5–14 ms: a set of 3,270 ints or
 * a dict of 2,700 int keys chosen to collide in V8's number hash (quadratic), a dict of 1,250
 * big-int keys sharing their low bits, 16,000 empty lists. At 32 KB the colliding set took
 * 47 ms, at 96 KB 450 ms, at 256 KB seconds.
 */
export const INLINE_CHECK_BYTES = 16 * 1024;

/**
 * How long results are decoded on the event loop between two polls for I/O; once it is spent,
 * the poll's other results go to a worker thread (together). With one more result of
 * {@link INLINE_CHECK_BYTES} that may start just before it ends, the loop is held for 35 ms at
 * most, while the 10,000 small results of a chunk's post (2 ms, once the decoder is warm) stay
 * here.
 */
export const INLINE_CHECK_MS = 20;

/** How long a worker thread may decode one result before it is kept as an error. */
export const CHECK_DEADLINE_MS = 30_000;

/** Options of {@link ResultChecker}; the defaults are the ones Sheepdog runs with. */
export interface ResultCheckerOptions {
  /** @default INLINE_CHECK_BYTES */
  inlineBytes?: number;
  /** @default INLINE_CHECK_MS */
  inlineMs?: number;
  /** @default CHECK_DEADLINE_MS */
  deadlineMs?: number;
  /** The most worker threads. @default 1, or 2 with more than two cores */
  workers?: number;
}

/**
 * Checks that results decode, as the server's `checkResult`, without holding its event loop:
 * a result of at most `inlineBytes` is decoded at once, while decoding here has taken less than
 * `inlineMs` since the last poll for I/O; the others on a worker thread, each within a
 * deadline. A result that does not decode, or could not be decoded in time, is kept as its
 * task's error (the reason says which).
 */
export class ResultChecker {
  readonly #inlineBytes: number;
  readonly #inlineMs: number;
  readonly #pool: DecodePool;
  /** Milliseconds spent decoding here since the last poll for I/O (reset in the check phase). */
  #spentMs = 0;
  #resetting = false;

  constructor(options: ResultCheckerOptions = {}) {
    this.#inlineBytes = options.inlineBytes ?? INLINE_CHECK_BYTES;
    this.#inlineMs = options.inlineMs ?? INLINE_CHECK_MS;
    // No thread starts before the first result that goes to one.
    this.#pool = new DecodePool({
      deadlineMs: options.deadlineMs ?? CHECK_DEADLINE_MS,
      workers: options.workers ?? Math.max(1, Math.min(2, availableParallelism() - 1)),
    });
  }

  /**
   * Why `bytes` cannot be kept as a result, or `undefined` when they decode: at once for small
   * results, else as a promise (see {@link DecodePool.decode}). A `ResultCheck` of the server.
   */
  readonly check = (bytes: Uint8Array): string | undefined | Promise<string | undefined> => {
    if (bytes.byteLength > this.#inlineBytes || this.#spentMs >= this.#inlineMs) {
      return this.#pool.decode(bytes);
    }
    const start = performance.now();
    const reason = undecodableReason(bytes);
    this.#spend(performance.now() - start);
    return reason;
  };

  /** Ends the worker threads; checks not yet answered reject with `CLOSED`. Idempotent. */
  close(): Promise<void> {
    return this.#pool.close();
  }

  #spend(ms: number): void {
    this.#spentMs += ms;
    if (this.#resetting) return;
    this.#resetting = true;
    setImmediate(() => {
      this.#spentMs = 0;
      this.#resetting = false;
    }).unref();
  }
}
