import type { RequestId, SheepdogError, StoreReport } from "@sheepdog/contracts";
import { ReportWatchers } from "@sheepdog/contracts";
import { closedError } from "./errors.js";
import type { Lifecycle } from "./lifecycle.js";
import type { ReportGroup } from "./reports.js";
import { writeReports } from "./reports.js";

interface PendingReports extends ReportGroup {
  resolve(stored: boolean[]): void;
  reject(error: unknown): void;
}

/**
 * Reports waiting to be written. Reports that arrive in the same turn of the event loop (a
 * server receiving many worker posts) are written in one transaction: a commit costs far more
 * than an insert, and a shared file allows one writer at a time.
 */
export class ReportQueue {
  readonly #lifecycle: Lifecycle;
  /** Told of the reports each flush stored (the store's `watchReports`). */
  readonly watchers = new ReportWatchers();
  #pending: PendingReports[] = [];
  #flushScheduled = false;

  constructor(lifecycle: Lifecycle) {
    this.#lifecycle = lifecycle;
  }

  /** Queues reports for the next flush; for each, whether it was stored (the first wins). */
  add(id: RequestId, reports: readonly StoreReport[]): Promise<boolean[]> {
    if (this.#lifecycle.closed) return Promise.reject(closedError());
    return new Promise<boolean[]>((resolve, reject) => {
      this.#pending.push({ id, reports, resolve, reject });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  /**
   * Writes every queued report in one transaction, and settles their promises. It takes its
   * place on the store's lock before it returns to the caller, so that close() can flush ahead
   * of closing.
   */
  async flush(): Promise<void> {
    this.#flushScheduled = false;
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    let outcomes: (boolean[] | SheepdogError)[];
    try {
      // Even while closing: close() flushes the reports it accepted.
      outcomes = await this.#lifecycle.write((c) => writeReports(c, batch), { whileClosing: true });
    } catch (error) {
      for (const pending of batch) pending.reject(error);
      return;
    }
    batch.forEach((pending, i) => {
      const outcome = outcomes[i] as boolean[] | SheepdogError;
      if (Array.isArray(outcome)) {
        this.watchers.tell(pending.id, pending.reports, outcome);
        pending.resolve(outcome);
      } else {
        pending.reject(outcome);
      }
    });
  }
}
