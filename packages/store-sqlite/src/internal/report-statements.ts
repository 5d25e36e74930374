import type { SqliteDatabase, SqliteStatement } from "../sqlite-database.js";

/** The statements that write reports. */
export interface ReportStatements {
  /** A task's report, unless it has one. */
  insertReport: SqliteStatement;
  /** A task's real report in place of its provisional error, if it has one. */
  replaceProvisional: SqliteStatement;
  /** Adds to (or takes from) a request's counts of results and errors. */
  addCounts: SqliteStatement;
}

/** Prepares the statements of putReports and resetTasks (see reports.ts), once per connection. */
export function prepareReports(db: SqliteDatabase): ReportStatements {
  return {
    insertReport: db.prepare(
      "INSERT INTO reports (arg_id, result, error, provisional) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
    ),
    replaceProvisional: db.prepare(
      "UPDATE reports SET result = ?, error = ?, provisional = 0 WHERE arg_id = ? AND provisional = 1",
    ),
    addCounts: db.prepare(
      "UPDATE requests SET results = results + ?, errors = errors + ? WHERE id = ?",
    ),
  };
}
