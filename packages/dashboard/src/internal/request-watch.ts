import type { RequestCounts, RequestId, RequestSummary, Store } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import { RateHistory } from "./rate-history.js";

/** Told about the requests whose counts or meta changed in one look. */
export type WatchListener = (changed: readonly RequestSummary[]) => void;

/** How often every request is read again (meta included), beside the quick looks. */
const FULL_READ_MS = 5_000;

function isComplete(row: RequestCounts): boolean {
  return row.results + row.errors >= row.tasks;
}

function sameRow(a: RequestSummary, b: RequestSummary): boolean {
  return (
    a.results === b.results &&
    a.errors === b.errors &&
    a.tasks === b.tasks &&
    JSON.stringify(a.meta) === JSON.stringify(b.meta)
  );
}

/**
 * One poll of the store shared by every viewer: every `pollMs` it reads the counts of the
 * requests still in progress (one cheap `counts` each) and looks for a new request (the next
 * id); every few seconds, and when asked, it reads every request (`listRequests`, meta
 * included). Viewers are told only of what changed; each request's reports per second are
 * kept from the first look. A look never overlaps the previous one.
 */
export class RequestWatch {
  readonly #store: Store;
  readonly #pollMs: number;
  readonly #onError: (error: unknown) => void;
  readonly #rows = new Map<RequestId, RequestSummary>();
  readonly #history = new Map<RequestId, RateHistory>();
  readonly #listeners = new Set<WatchListener>();
  #timer: NodeJS.Timeout | undefined;
  #looking: Promise<void> | undefined;
  #lastFullRead = 0;
  #fullReadWanted = true;
  #lastFailure: string | undefined;
  #lastError: unknown;
  #closed = false;

  constructor(store: Store, pollMs: number, onError: (error: unknown) => void) {
    this.#store = store;
    this.#pollMs = pollMs;
    this.#onError = onError;
    this.#schedule(0);
  }

  /**
   * Every request, oldest first, read now (and the listeners told of what changed). Rejects as
   * the store did when that read fails.
   */
  async rows(): Promise<RequestSummary[]> {
    await this.lookNow();
    if (this.#lastError !== undefined) throw this.#lastError;
    return [...this.#rows.values()];
  }

  /** Request `id` as last seen, `undefined` when not seen (yet). */
  row(id: RequestId): RequestSummary | undefined {
    return this.#rows.get(id);
  }

  /** Request `id`'s reports per second, `undefined` when not seen (yet). */
  history(id: RequestId): RateHistory | undefined {
    return this.#history.get(id);
  }

  /** Adds a listener for changes; returns a function that removes it. */
  subscribe(listener: WatchListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Reads every request now (after an action changed one), and tells the listeners. */
  async lookNow(): Promise<void> {
    this.#fullReadWanted = true;
    await this.#looking;
    if (this.#closed) return;
    clearTimeout(this.#timer);
    await this.#look();
  }

  /** Stops polling and forgets the listeners. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#listeners.clear();
  }

  #schedule(delay: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => void this.#look(), delay);
    this.#timer.unref();
  }

  #look(): Promise<void> {
    this.#looking ??= this.#lookOnce().finally(() => {
      this.#looking = undefined;
      this.#schedule(this.#pollMs);
    });
    return this.#looking;
  }

  async #lookOnce(): Promise<void> {
    try {
      const now = Date.now();
      const full = this.#fullReadWanted || now - this.#lastFullRead >= FULL_READ_MS;
      const seen = full ? await this.#readAll() : await this.#readActive();
      if (!full && (await this.#hasNewRequest())) return await this.#lookOnce();
      if (full) this.#lastFullRead = now;
      this.#lastFailure = undefined;
      this.#lastError = undefined;
      this.#apply(seen, now);
    } catch (error) {
      this.#failed(error);
    }
  }

  async #readAll(): Promise<RequestSummary[]> {
    this.#fullReadWanted = false;
    return this.#store.listRequests();
  }

  /** The requests in progress, with their counts read again. */
  async #readActive(): Promise<RequestSummary[]> {
    const active = [...this.#rows.values()].filter((row) => !isComplete(row));
    const seen: RequestSummary[] = [];
    for (const row of active) {
      const counts = await this.#store.counts(row.id);
      seen.push({ ...row, ...counts });
    }
    return seen;
  }

  /** Whether a request after the last one seen exists (then every request is read). */
  async #hasNewRequest(): Promise<boolean> {
    let last = 0;
    for (const id of this.#rows.keys()) last = Math.max(last, id);
    try {
      await this.#store.counts(last + 1);
    } catch (error) {
      if (SheepdogError.isInstance(error) && error.code === "REQUEST_NOT_FOUND") return false;
      throw error;
    }
    this.#fullReadWanted = true;
    return true;
  }

  #apply(seen: readonly RequestSummary[], now: number): void {
    const changed: RequestSummary[] = [];
    for (const row of seen) {
      const before = this.#rows.get(row.id);
      this.#rows.set(row.id, row);
      const history = this.#history.get(row.id);
      if (history) history.observe(now, row.results, row.errors);
      else this.#history.set(row.id, new RateHistory(now, row.results, row.errors));
      if (!before || !sameRow(before, row)) changed.push(row);
    }
    if (changed.length === 0 || this.#closed) return;
    for (const listener of this.#listeners) {
      try {
        listener(changed);
      } catch (error) {
        this.#onError(error);
      }
    }
  }

  /** Tells onError about a failed look, once until a look succeeds or fails differently. */
  #failed(error: unknown): void {
    this.#lastError = error;
    if (this.#closed) return;
    const message = error instanceof Error ? error.message : String(error);
    if (message === this.#lastFailure) return;
    this.#lastFailure = message;
    this.#onError(error);
  }
}
