import type { SqliteDatabase } from "./sqlite-database.js";

/** The options of {@link sqliteStore} that do not say where the data is. */
export interface SqliteStoreCommonOptions {
  /**
   * How long a call waits for another process's write to finish before it fails with
   * `STORE_IO`, in milliseconds. The wait is asynchronous: the event loop keeps running.
   * @default 30_000
   */
  busyTimeout?: number;
}

/** {@link sqliteStore} on a file that the store opens, and closes on `close()`. */
export interface SqliteStoreFileOptions extends SqliteStoreCommonOptions {
  /**
   * The database file, as core's configuration calls it: created if missing, with mode 0600
   * whatever the umask (SQLite gives its -wal and -shm files the same mode); an existing file
   * keeps its mode, and one that this process can read but not write is opened read-only (its
   * requests can be read; every write fails with `STORE_IO`). `":memory:"` is a private
   * in-memory database. It must be empty or a Sheepdog database.
   */
  dbfile: string;
  database?: never;
}

/** {@link sqliteStore} on a database that you opened (see {@link SqliteDatabase}). */
export interface SqliteStoreDatabaseOptions extends SqliteStoreCommonOptions {
  /**
   * An open better-sqlite3 `Database`, or anything with the methods of {@link SqliteDatabase}.
   * It stays yours: `close()` leaves it open. It must be empty or a Sheepdog database.
   */
  database: SqliteDatabase;
  dbfile?: never;
}

/**
 * Options of {@link sqliteStore}: `dbfile` (a path) or `database` (an open database), exactly
 * one of them, and `busyTimeout`.
 */
export type SqliteStoreOptions = SqliteStoreFileOptions | SqliteStoreDatabaseOptions;
