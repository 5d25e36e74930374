import { retryBusy } from "./busy.js";
import type { Connection, StoreTarget } from "./connection.js";
import { closeConnection, openConnection } from "./connection.js";
import { closedError, storeError } from "./errors.js";
import type { SchemaSteps } from "./migrations.js";
import { Mutex } from "./mutex.js";
import { rollback } from "./rows.js";

/** What a store is opened on, checked. */
export interface LifecycleOptions {
  target: StoreTarget;
  busyTimeout: number;
  /** The database's name in messages: its absolute path, or a description. */
  file: string;
  schema: SchemaSteps;
}

/**
 * A store's one connection and what runs on it: opened on first use (and again after a failed
 * open), one call at a time (see {@link Mutex}), refused after close. SQLite's errors come out
 * as SheepdogErrors that name the file.
 */
export class Lifecycle {
  readonly #options: LifecycleOptions;
  readonly #lock = new Mutex();
  #connecting: Promise<Connection> | undefined;
  #closed = false;

  constructor(options: LifecycleOptions) {
    this.#options = options;
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** A read: repeated while another connection holds a lock it needs. */
  read<T>(work: (c: Connection) => T | Promise<T>): Promise<T> {
    const { busyTimeout, file } = this.#options;
    return this.#run((c) => retryBusy(() => work(c), busyTimeout, file), false);
  }

  /**
   * A write in one BEGIN IMMEDIATE transaction: it takes SQLite's write lock up front (waiting
   * for other processes without blocking the event loop), so that it cannot fail half-way
   * with SQLITE_BUSY as a deferred transaction that upgrades its lock can. With `whileClosing`,
   * it runs after close() was called (but not after the connection closed).
   */
  write<T>(
    work: (c: Connection) => T | Promise<T>,
    { whileClosing = false }: { whileClosing?: boolean } = {},
  ): Promise<T> {
    const { busyTimeout, file } = this.#options;
    return this.#run(async (c) => {
      await retryBusy(() => c.begin.run([]), busyTimeout, file);
      try {
        const result = await work(c);
        c.commit.run([]);
        return result;
      } catch (error) {
        rollback(c.db);
        throw error;
      }
    }, whileClosing);
  }

  /**
   * Refuses new calls, runs `drain` (which must queue its work on the lock before it returns
   * to its caller, as {@link write} does), lets the calls queued before finish, then closes
   * the connection. A second close() does nothing.
   */
  async close(drain: () => Promise<void>): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const draining = drain();
    await this.#lock.run(async () => {
      const connection = await this.#connecting?.catch(() => undefined);
      if (connection) await closeConnection(connection);
    });
    await draining;
  }

  /**
   * Runs `work` alone on the connection. The lock is taken synchronously, so calls run in the
   * order they were made.
   */
  #run<T>(work: (c: Connection) => T | Promise<T>, whileClosing: boolean): Promise<T> {
    if (this.#closed && !whileClosing) return Promise.reject(closedError());
    return this.#lock.run(async () => {
      const connection = await this.#connect();
      if (connection.closed) throw closedError();
      try {
        return await work(connection);
      } catch (error) {
        throw storeError(error, this.#options.file);
      }
    });
  }

  /** The open connection, opening it on first use; a failed open is retried on the next call. */
  #connect(): Promise<Connection> {
    if (!this.#connecting) {
      const { target, schema, busyTimeout, file } = this.#options;
      this.#connecting = openConnection(target, schema, busyTimeout, file).catch(
        (error: unknown) => {
          this.#connecting = undefined;
          throw error;
        },
      );
    }
    return this.#connecting;
  }
}
