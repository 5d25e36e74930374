import type { SqliteDatabase, SqliteStatement } from "../sqlite-database.js";

/** The first row of a query, or undefined. */
export function firstRow(statement: SqliteStatement, parameters: unknown[]): unknown {
  return statement.all(parameters)[0];
}

/** Row cells, whether the statement returns arrays (raw) or objects. */
export function cells(row: unknown): unknown[] {
  return Array.isArray(row) ? row : Object.values(row as object);
}

/** The statement, returning rows as arrays where the database can (better-sqlite3's `raw`). */
export function rawRows(statement: SqliteStatement): SqliteStatement {
  statement.raw?.(true);
  return statement;
}

/**
 * Ends a failed transaction. SQLite has already rolled back after some errors (a full disk),
 * and then ROLLBACK itself fails: the first error is the one to report.
 */
export function rollback(db: SqliteDatabase): void {
  try {
    db.prepare("ROLLBACK").run([]);
  } catch {
    // No transaction was active any more.
  }
}

export function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array;
}

export function isRequestId(id: unknown): id is number {
  return Number.isSafeInteger(id) && (id as number) > 0;
}

/** Lets the event loop run (timers, I/O) before going on. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
