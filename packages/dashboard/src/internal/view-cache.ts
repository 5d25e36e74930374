/**
 * What a view was read for: the counts it reflects (`key`), what else forces a new read when it
 * changes (`meta`), and whether the request is finished (every task reported).
 */
export interface ViewStamp {
  key: string;
  meta: string;
  complete: boolean;
}

/** The timing rules of {@link ViewCache}. */
export interface ViewCacheOptions {
  /** How many requests' views are kept (the least recently read go first). */
  kept: number;
  /** A view younger than this (ms) is reused while only the counts changed. */
  minReuseMs?: number;
  /** ... or younger than this many times as long as its read took. */
  reuseFactor?: number;
  /** Milliseconds from any fixed point (`performance.now` by default). */
  clock?: () => number;
  /**
   * Whether every answer is a view read for the counts asked: no view of other counts is
   * shared or reused, a read waits instead until the last one is as old as a reuse would be.
   */
  exact?: boolean;
}

interface Built<V> {
  value: V;
  stamp: ViewStamp;
  /** When its read began. */
  startedAt: number;
  /** How long its read took (ms). */
  took: number;
}

interface Slot<V> {
  built: Built<V> | null;
  building: { promise: Promise<V>; stamp: ViewStamp } | null;
}

/**
 * Views of requests that cost a read of every task, read at most once at a time per request
 * and reused while only the request's counts changed and the view is young (younger than
 * `max(minReuseMs, reuseFactor × its read time)`); a finished request's view is read once
 * more for its final counts, so that it ends exact. An `exact` cache spaces its reads the same
 * way, but answers only with a view of the counts asked.
 */
export class ViewCache<V> {
  readonly #slots = new Map<string, Slot<V>>();
  readonly #kept: number;
  readonly #minReuseMs: number;
  readonly #reuseFactor: number;
  readonly #clock: () => number;
  readonly #exact: boolean;

  constructor(options: ViewCacheOptions) {
    this.#kept = options.kept;
    this.#minReuseMs = options.minReuseMs ?? 2_000;
    this.#reuseFactor = options.reuseFactor ?? 20;
    this.#clock = options.clock ?? (() => performance.now());
    this.#exact = options.exact ?? false;
  }

  /** The view of request `id` for `stamp`: kept, being read, or read now by `read`. */
  get(id: string, stamp: ViewStamp, read: () => Promise<V>): Promise<V> {
    const slot = this.#slotOf(id);
    const { building, built } = slot;
    if (building) {
      if (this.#shares(building.stamp, stamp)) return building.promise;
      return this.#start(slot, stamp, read, building.promise);
    }
    if (!built) return this.#start(slot, stamp, read, null);
    if (built.stamp.key === stamp.key) return Promise.resolve(built.value);
    const youthLeft = this.#mayStandIn(built.stamp, stamp) ? this.#youthLeft(built) : 0;
    if (youthLeft <= 0) return this.#start(slot, stamp, read, null);
    if (!this.#exact) return Promise.resolve(built.value);
    return this.#start(slot, stamp, read, delay(youthLeft));
  }

  /** A read under way serves a request whose counts are not final, or are what it reads. */
  #shares(reading: ViewStamp, wanted: ViewStamp): boolean {
    if (reading.key === wanted.key) return true;
    return !this.#exact && this.#mayStandIn(reading, wanted);
  }

  /** Whether a view of other counts may stand in for `wanted` (or space its read). */
  #mayStandIn(other: ViewStamp, wanted: ViewStamp): boolean {
    return !wanted.complete && other.meta === wanted.meta;
  }

  /** Milliseconds until `built` is too old to be reused. */
  #youthLeft(built: Built<V>): number {
    const age = this.#clock() - built.startedAt;
    return Math.max(this.#minReuseMs, this.#reuseFactor * built.took) - age;
  }

  /** Reads the view (after `before` settles: never two reads of one request at once). */
  #start(
    slot: Slot<V>,
    stamp: ViewStamp,
    read: () => Promise<V>,
    before: Promise<unknown> | null,
  ): Promise<V> {
    let startedAt = this.#clock();
    const timedRead = (): Promise<V> => {
      startedAt = this.#clock();
      return read();
    };
    const promise = before ? before.then(timedRead, timedRead) : timedRead();
    const building = { promise, stamp };
    slot.building = building;
    promise.then(
      (value) => {
        if (slot.building === building) slot.building = null;
        const took = this.#clock() - startedAt;
        if (!slot.built || slot.built.startedAt <= startedAt) {
          slot.built = { value, stamp, startedAt, took };
        }
      },
      () => {
        if (slot.building === building) slot.building = null;
      },
    );
    return promise;
  }

  #slotOf(id: string): Slot<V> {
    let slot = this.#slots.get(id);
    if (slot) this.#slots.delete(id);
    else slot = { built: null, building: null };
    this.#slots.set(id, slot);
    for (const old of this.#slots.keys()) {
      if (this.#slots.size <= this.#kept) break;
      this.#slots.delete(old);
    }
    return slot;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
