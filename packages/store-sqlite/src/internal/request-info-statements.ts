import type { SqliteDatabase, SqliteStatement } from "../sqlite-database.js";

/** The statements that read a request's row and change its meta. */
export interface RequestInfoStatements {
  requestRow: SqliteStatement;
  requestCounts: SqliteStatement;
  requestMeta: SqliteStatement;
  setMeta: SqliteStatement;
}

/** Prepares the statements of request-info.ts, once per connection. */
export function prepareRequestInfo(db: SqliteDatabase): RequestInfoStatements {
  return {
    requestRow: db.prepare(
      "SELECT id, func, ns, tasks, token_hash, created_at, meta FROM requests WHERE id = ?",
    ),
    requestCounts: db.prepare("SELECT tasks, results, errors FROM requests WHERE id = ?"),
    requestMeta: db.prepare("SELECT meta FROM requests WHERE id = ?"),
    setMeta: db.prepare("UPDATE requests SET meta = ? WHERE id = ?"),
  };
}
