/**
 * The part of a better-sqlite3 `Database` that this store uses. It is a structural type, as
 * Kysely's `SqliteDatabase` is, so that an injected database need not come from the same copy
 * of better-sqlite3 (or from better-sqlite3 at all).
 */
export interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  close(): void;
  /** The file it was opened on (better-sqlite3's `name`); used in error messages. */
  readonly name?: string;
  /** Whether it was opened read-only (better-sqlite3's `readonly`): then it is only read. */
  readonly readonly?: boolean;
}

/** The part of a better-sqlite3 `Statement` that this store uses. */
export interface SqliteStatement {
  readonly reader: boolean;
  all(parameters: ReadonlyArray<unknown>): unknown[];
  run(parameters: ReadonlyArray<unknown>): {
    changes: number | bigint;
    lastInsertRowid: number | bigint;
  };
  iterate(parameters: ReadonlyArray<unknown>): IterableIterator<unknown>;
  /** better-sqlite3's `raw(true)`, rows as arrays; used when present. */
  raw?(toggle?: boolean): unknown;
}
