import type { MacKey, RequestId, Store, TaskLayout } from "@sheepdog/contracts";
import { layoutOf, macKey } from "@sheepdog/contracts";

/** What the server needs of a request on every call, read from the store once. */
export interface RequestSnapshot {
  id: RequestId;
  /** The request's key (its token's hash), ready for HMAC (wire protocol v2). */
  key: MacKey;
  /**
   * Which arguments each task covers (`layoutOf` the request's meta): a damaged `retryTasks`
   * counts as none, so it can only make tasks unknown (404), never serve wrong arguments.
   */
  layout: TaskLayout;
  func: Uint8Array;
  ns: Uint8Array;
}

/** A cached request: its read, and once it is done, its snapshot and size in bytes. */
interface Entry {
  loading: Promise<RequestSnapshot>;
  snapshot: RequestSnapshot | undefined;
  size: number;
}

/**
 * A bounded cache of request snapshots, so that a fetch or a report costs no store read for
 * the request itself. A request's token, tasks, chunk size, function and namespace never
 * change once created; its retry tasks only grow, and {@link RequestCache.refresh} reads them
 * again when a task past the known end is asked for. Failures (an unknown id) are not cached,
 * so a request created later by another process is found.
 */
export class RequestCache {
  readonly #store: Store;
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #entries = new Map<RequestId, Entry>();
  readonly #refreshing = new Set<RequestId>();
  /** Requests whose store write is under way: read once it settles (see {@link hold}). */
  readonly #holds = new Map<RequestId, Promise<void>>();
  /** The most recently used id: a Map keeps insertion order, so it is the last key. */
  #newest: RequestId | undefined;
  #bytes = 0;

  constructor(store: Store, maxEntries = 256, maxBytes = 256 * 1024 * 1024) {
    this.#store = store;
    this.#maxEntries = maxEntries;
    this.#maxBytes = maxBytes;
  }

  /** The snapshot of request `id`; rejects as the store does for an unknown id. */
  get(id: RequestId): Promise<RequestSnapshot> {
    const cached = this.#used(id);
    if (cached !== undefined) return cached.loading;
    const entry: Entry = { loading: this.#load(id), snapshot: undefined, size: 0 };
    this.#entries.set(id, entry);
    this.#newest = id;
    entry.loading.then(
      (snapshot) => {
        if (this.#entries.get(id) !== entry) return;
        entry.snapshot = snapshot;
        entry.size = snapshot.func.byteLength + snapshot.ns.byteLength;
        for (const list of snapshot.layout.retryTasks) entry.size += 8 * list.length;
        this.#bytes += entry.size;
        this.#evict();
      },
      () => {
        if (this.#entries.get(id) === entry) this.#forget(id);
      },
    );
    return entry.loading;
  }

  /**
   * The snapshot of request `id` when it is cached and read already, else `undefined` (then
   * {@link get} reads it): the same snapshot `get` resolves to, without waiting for a promise.
   */
  ready(id: RequestId): RequestSnapshot | undefined {
    return this.#used(id)?.snapshot;
  }

  /**
   * Reads request `id` again (its meta may have gained retry tasks since it was cached); calls
   * made while one read is under way share it.
   */
  refresh(id: RequestId): Promise<RequestSnapshot> {
    const current = this.#entries.get(id);
    if (current !== undefined && this.#refreshing.has(id)) return current.loading;
    this.#forget(id);
    const loading = this.get(id);
    this.#refreshing.add(id);
    const done = () => this.#refreshing.delete(id);
    loading.then(done, done);
    return loading;
  }

  /**
   * Reads request `id` only once `until` settles (however it settles): its store write is under
   * way, and a read before it ends would find no such request.
   */
  hold(id: RequestId, until: Promise<unknown>): void {
    const settled = until.then(
      () => {},
      () => {},
    );
    this.#holds.set(id, settled);
    this.#forget(id);
    void settled.then(() => {
      if (this.#holds.get(id) === settled) this.#holds.delete(id);
    });
  }

  /** Drops every entry. */
  clear(): void {
    this.#entries.clear();
    this.#holds.clear();
    this.#newest = undefined;
    this.#bytes = 0;
  }

  /** The entry of `id`, marked as the most recently used (last in the map). */
  #used(id: RequestId): Entry | undefined {
    const entry = this.#entries.get(id);
    if (entry !== undefined && this.#newest !== id) {
      this.#entries.delete(id);
      this.#entries.set(id, entry);
      this.#newest = id;
    }
    return entry;
  }

  async #load(id: RequestId): Promise<RequestSnapshot> {
    await this.#holds.get(id);
    const info = await this.#store.getRequest(id);
    return {
      id: info.id,
      key: macKey(info.tokenHash),
      layout: layoutOf(info.meta, info.tasks),
      func: info.func,
      ns: info.ns,
    };
  }

  #forget(id: RequestId): void {
    const entry = this.#entries.get(id);
    if (entry === undefined) return;
    this.#entries.delete(id);
    this.#bytes -= entry.size;
    if (this.#newest === id) this.#newest = undefined;
  }

  #evict(): void {
    for (const id of this.#entries.keys()) {
      if (this.#entries.size <= this.#maxEntries && this.#bytes <= this.#maxBytes) return;
      if (this.#entries.size === 1) return;
      this.#forget(id);
    }
  }
}
