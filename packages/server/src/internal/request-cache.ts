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
  readonly #entries = new Map<RequestId, Promise<RequestSnapshot>>();
  readonly #sizes = new Map<RequestId, number>();
  readonly #refreshing = new Set<RequestId>();
  #bytes = 0;

  constructor(store: Store, maxEntries = 256, maxBytes = 256 * 1024 * 1024) {
    this.#store = store;
    this.#maxEntries = maxEntries;
    this.#maxBytes = maxBytes;
  }

  /** The snapshot of request `id`; rejects as the store does for an unknown id. */
  get(id: RequestId): Promise<RequestSnapshot> {
    const cached = this.#entries.get(id);
    if (cached !== undefined) {
      // Most recently used last.
      this.#entries.delete(id);
      this.#entries.set(id, cached);
      return cached;
    }
    const loading = this.#store.getRequest(id).then((info) => {
      const snapshot: RequestSnapshot = {
        id: info.id,
        key: macKey(info.tokenHash),
        layout: layoutOf(info.meta, info.tasks),
        func: info.func,
        ns: info.ns,
      };
      if (this.#entries.get(id) === loading) {
        let size = snapshot.func.byteLength + snapshot.ns.byteLength;
        for (const list of snapshot.layout.retryTasks) size += 8 * list.length;
        this.#sizes.set(id, size);
        this.#bytes += size;
        this.#evict();
      }
      return snapshot;
    });
    this.#entries.set(id, loading);
    loading.catch(() => {
      if (this.#entries.get(id) === loading) this.#entries.delete(id);
    });
    return loading;
  }

  /**
   * Reads request `id` again (its meta may have gained retry tasks since it was cached); calls
   * made while one read is under way share it.
   */
  refresh(id: RequestId): Promise<RequestSnapshot> {
    const current = this.#entries.get(id);
    if (current !== undefined && this.#refreshing.has(id)) return current;
    this.#forget(id);
    const loading = this.get(id);
    this.#refreshing.add(id);
    const done = () => this.#refreshing.delete(id);
    loading.then(done, done);
    return loading;
  }

  #forget(id: RequestId): void {
    this.#entries.delete(id);
    this.#bytes -= this.#sizes.get(id) ?? 0;
    this.#sizes.delete(id);
  }

  /** Drops every entry. */
  clear(): void {
    this.#entries.clear();
    this.#sizes.clear();
    this.#bytes = 0;
  }

  #evict(): void {
    for (const id of this.#entries.keys()) {
      if (this.#entries.size <= this.#maxEntries && this.#bytes <= this.#maxBytes) return;
      if (this.#entries.size === 1) return;
      this.#forget(id);
    }
  }
}
