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
 * more for its final counts, so that it ends exact.
 */
export class ViewCache<V> {
  readonly #slots = new Map<string, Slot<V>>();
  readonly #kept: number;
  readonly #minReuseMs: number;
  readonly #reuseFactor: number;
  readonly #clock: () => number;

  constructor(options: ViewCacheOptions) {
    this.#kept = options.kept;
    this.#minReuseMs = options.minReuseMs ?? 2_000;
    this.#reuseFactor = options.reuseFactor ?? 20;
    this.#clock = options.clock ?? (() => performance.now());
  }

  /** The view of request `id` for `stamp`: kept, being read, or read now by `read`. */
  get(id: string, stamp: ViewStamp, read: () => Promise<V>): Promise<V> {
    const slot = this.#slotOf(id);
    const { building, built } = slot;
    if (building) {
      if (this.#shares(building.stamp, stamp)) return building.promise;
      return this.#start(slot, stamp, read, building.promise);
    }
    if (built && this.#reuses(built, stamp)) return Promise.resolve(built.value);
    return this.#start(slot, stamp, read, null);
  }

  /** A read under way serves a request whose counts are not final, or are what it reads. */
  #shares(reading: ViewStamp, wanted: ViewStamp): boolean {
    if (reading.key === wanted.key) return true;
    return !wanted.complete && reading.meta === wanted.meta;
  }

  #reuses(built: Built<V>, wanted: ViewStamp): boolean {
    if (built.stamp.key === wanted.key) return true;
    if (wanted.complete || built.stamp.meta !== wanted.meta) return false;
    const age = this.#clock() - built.startedAt;
    return age < Math.max(this.#minReuseMs, this.#reuseFactor * built.took);
  }

  /** Reads the view (after `before` settles: never two reads of one request at once). */
  #start(
    slot: Slot<V>,
    stamp: ViewStamp,
    read: () => Promise<V>,
    before: Promise<V> | null,
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
