import type { RequestId, StoredReportsListener, StoreReport } from "./store.js";

/**
 * The listeners of a store's {@link Store.watchReports}: what a store keeps to offer it. After
 * each write, `tell` passes each listener the reports that the write stored.
 *
 * @example
 * ```ts
 * const watchers = new ReportWatchers();
 * // in the store: watchReports: (listener) => watchers.watch(listener),
 * // after a write of `reports` to request `id` commits, with `stored[i]` for each:
 * watchers.tell(id, reports, stored);
 * ```
 */
export class ReportWatchers {
  readonly #listeners = new Set<StoredReportsListener>();

  /** Adds `listener`; returns a function that removes it. */
  watch(listener: StoredReportsListener): () => void {
    const entry: StoredReportsListener = (id, reports) => listener(id, reports);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  /** Tells every listener of the reports of request `id` whose `stored` entry is `true`. */
  tell(id: RequestId, reports: readonly StoreReport[], stored: readonly boolean[]): void {
    if (this.#listeners.size === 0) return;
    const kept = stored.every(Boolean) ? reports : reports.filter((_, at) => stored[at]);
    if (kept.length === 0) return;
    for (const listener of this.#listeners) {
      try {
        listener(id, kept);
      } catch {
        // A listener that throws is the listener's fault; the write it hears of has happened.
      }
    }
  }
}
