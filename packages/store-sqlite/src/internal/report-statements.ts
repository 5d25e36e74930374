import type { SqliteDatabase, SqliteStatement } from "../sqlite-database.js";

/** How many reports one INSERT statement carries (see insertReports in reports.ts). */
export const REPORTS_PER_INSERT = 100;

/** The statements that write reports. */
export interface ReportStatements {
  /** A task's report, unless it has one. */
  insertReport: SqliteStatement;
  /**
   * REPORTS_PER_INSERT real reports (arg_id, result, error each), those whose task had none;
   * its `changes` say how many.
   */
  insertReports: SqliteStatement;
  /** A savepoint before insertReports, released, or rolled back to when a report was not new. */
  chunkBegin: SqliteStatement;
  chunkUndo: SqliteStatement;
  chunkEnd: SqliteStatement;
  /** A task's real report in place of its provisional error, if it has one. */
  replaceProvisional: SqliteStatement;
  /** Adds to (or takes from) a request's counts of results and errors. */
  addCounts: SqliteStatement;
  /** A task's facts, in place of any it had. */
  putFacts: SqliteStatement;
  /** REPORTS_PER_INSERT tasks' facts (the seven columns of putFacts each). */
  putFactsRows: SqliteStatement;
  /** Forgets a task's facts. */
  dropFacts: SqliteStatement;
}

/** Prepares the statements of putReports and resetTasks (see reports.ts), once per connection. */
export function prepareReports(db: SqliteDatabase): ReportStatements {
  const rows = (values: string) =>
    Array.from({ length: REPORTS_PER_INSERT }, () => values).join(", ");
  return {
    insertReports: db.prepare(
      `INSERT INTO reports (arg_id, result, error, provisional) VALUES ${rows("(?, ?, ?, 0)")} ON CONFLICT DO NOTHING`,
    ),
    chunkBegin: db.prepare("SAVEPOINT report_chunk"),
    chunkUndo: db.prepare("ROLLBACK TO report_chunk"),
    chunkEnd: db.prepare("RELEASE report_chunk"),
    putFactsRows: db.prepare(
      `INSERT OR REPLACE INTO facts (arg_id, started_at, ended_at, host, peak_memory_bytes, attempt, log) VALUES ${rows("(?, ?, ?, ?, ?, ?, ?)")}`,
    ),
    insertReport: db.prepare(
      "INSERT INTO reports (arg_id, result, error, provisional) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
    ),
    replaceProvisional: db.prepare(
      "UPDATE reports SET result = ?, error = ?, provisional = 0 WHERE arg_id = ? AND provisional = 1",
    ),
    addCounts: db.prepare(
      "UPDATE requests SET results = results + ?, errors = errors + ? WHERE id = ?",
    ),
    putFacts: db.prepare(
      "INSERT OR REPLACE INTO facts (arg_id, started_at, ended_at, host, peak_memory_bytes, attempt, log) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ),
    dropFacts: db.prepare("DELETE FROM facts WHERE arg_id = ?"),
  };
}
