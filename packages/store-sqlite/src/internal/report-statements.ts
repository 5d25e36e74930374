import type { SqliteDatabase, SqliteStatement } from "../sqlite-database.js";

/** The statements that write reports. */
export interface ReportStatements {
  /** A task's report, unless it has one. */
  insertReport: SqliteStatement;
  /** Adds to (or takes from) a request's counts of results and errors. */
  addCounts: SqliteStatement;
}

/** Prepares the statements of putReports and resetTasks (see reports.ts), once per connection. */
export function prepareReports(db: SqliteDatabase): ReportStatements {
  return {
    insertReport: db.prepare(
      "INSERT INTO reports (arg_id, result, error) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
    ),
    addCounts: db.prepare(
      "UPDATE requests SET results = results + ?, errors = errors + ? WHERE id = ?",
    ),
  };
}
