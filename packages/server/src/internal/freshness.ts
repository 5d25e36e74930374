import { REQUEST_TIME_AHEAD_MS, REQUEST_TIME_BEHIND_MS } from "@sheepdog/contracts";
import { NonceSet } from "./nonce-set.js";

/** The nonces of signed requests are kept in buckets of this many milliseconds of their time. */
const BUCKET_MS = 10_000;

/**
 * What makes a signed worker request usable once only (wire protocol v2): its time must lie
 * within the window around the server's clock and not before the server started (so that a
 * request captured before, by a program squatting a port, cannot be replayed to a server
 * started after), and its nonce must be new. Nonces are remembered as long as their time is
 * in the window, so memory grows with the rate of requests, not with their total.
 */
export class Freshness {
  readonly #startedAt: number;
  readonly #buckets = new Map<number, NonceSet>();
  #nextSweep = 0;
  /** The latest clock reading seen: a clock set back does not bring old nonces back. */
  #latest = 0;

  constructor(startedAt: number) {
    this.#startedAt = startedAt;
  }

  /** Whether a request signed at `time` may be accepted at `now`. */
  inWindow(time: number, now: number): boolean {
    if (now > this.#latest) this.#latest = now;
    return (
      time >= this.#latest - REQUEST_TIME_BEHIND_MS &&
      time >= this.#startedAt &&
      time <= now + REQUEST_TIME_AHEAD_MS
    );
  }

  /**
   * Records the nonce (22 base64url characters) of a request whose time is in the window;
   * false when it was seen before (a replay).
   */
  firstUse(nonce: string, time: number, now: number): boolean {
    if (now >= this.#nextSweep) this.#sweep(now);
    const index = Math.floor(time / BUCKET_MS);
    let bucket = this.#buckets.get(index);
    if (bucket === undefined) {
      bucket = new NonceSet();
      this.#buckets.set(index, bucket);
    }
    return bucket.add(nonce);
  }

  /** Drops the buckets whose times have all left the window. */
  #sweep(now: number): void {
    this.#nextSweep = now + BUCKET_MS;
    const oldest = Math.max(now, this.#latest) - REQUEST_TIME_BEHIND_MS;
    for (const index of this.#buckets.keys()) {
      if ((index + 1) * BUCKET_MS <= oldest) this.#buckets.delete(index);
    }
  }

  /** How many nonces are remembered (for tests). */
  get size(): number {
    let size = 0;
    for (const bucket of this.#buckets.values()) size += bucket.size;
    return size;
  }

  /** Forgets every nonce. */
  clear(): void {
    this.#buckets.clear();
  }
}
