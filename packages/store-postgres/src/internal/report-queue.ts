import type { RequestId, SheepdogError, StoreReport } from "@sheepdog/contracts";
import { ReportWatchers } from "@sheepdog/contracts";
import type { Database } from "./database.js";
import { closedError } from "./errors.js";
import type { ReportGroup } from "./reports.js";
import { writeReports } from "./reports.js";

interface PendingReports extends ReportGroup {
  resolve(stored: boolean[]): void;
  reject(error: unknown): void;
}

/**
 * Reports waiting to be written. Reports that arrive in the same turn of the event loop (a
 * server receiving many worker posts) are written in one statement, one round trip and one
 * commit for all of them; flushes of later turns run beside it on other connections of the pool.
 */
export class ReportQueue {
  readonly #database: Database;
  /** Told of the reports each flush stored (the store's `watchReports`). */
  readonly watchers = new ReportWatchers();
  #pending: PendingReports[] = [];
  #flushScheduled = false;

  constructor(database: Database) {
    this.#database = database;
  }

  /** Queues reports for the next flush; for each, whether it was stored (the first wins). */
  async add(id: RequestId, reports: readonly StoreReport[]): Promise<boolean[]> {
    if (this.#database.closed) throw closedError();
    return new Promise<boolean[]>((resolve, reject) => {
      this.#pending.push({ id, reports, resolve, reject });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  /**
   * Writes every queued report, and settles their promises. Repeated as a whole after a lost
   * connection: a report that the lost try stored is found stored by the next, the same as
   * sent, and still answered `true` (see writeReports); the counts are right either way.
   */
  async flush(): Promise<void> {
    this.#flushScheduled = false;
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    let outcomes: (boolean[] | SheepdogError)[];
    try {
      // Even while closing: close() flushes the reports it accepted.
      let tries = 0;
      outcomes = await this.#database.run((opened) => writeReports(opened, batch, tries++ > 0), {
        whileClosing: true,
      });
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
