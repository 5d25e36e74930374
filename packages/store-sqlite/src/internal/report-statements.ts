import type { SqliteDatabase, SqliteStatement } from "../sqlite-database.js";

/** How many reports one INSERT statement carries (see insertReports in reports.ts). */
export const REPORTS_PER_INSERT = 100;

/**
 * The columns each statement here binds first, in this order: a report's outcome and its facts
 * (see TaskFacts), then its arg row (see setReportValues in reports.ts). A report without facts
 * binds its outcome and row alone (see insertOutcomes).
 */
const OUTCOME_AND_FACTS = "result, error, started_at, ended_at, host, peak_memory_bytes, attempt";
const REPORT = `${OUTCOME_AND_FACTS}, arg_id`;

/** How many parameters a report binds: the columns of REPORT, or three without its facts. */
export const REPORT_PARAMETERS = 8;
export const OUTCOME_PARAMETERS = 3;

/** The statements that write reports. */
export interface ReportStatements {
  /** A task's report (REPORT_PARAMETERS, then whether it is provisional), unless it has one. */
  insertReport: SqliteStatement;
  /**
   * REPORTS_PER_INSERT real reports (REPORT_PARAMETERS each), those whose task had none; its
   * `changes` say how many.
   */
  insertReports: SqliteStatement;
  /**
   * As insertReports, for reports without facts (OUTCOME_PARAMETERS each): binding five nulls
   * a report cost a seventh more than the insert.
   */
  insertOutcomes: SqliteStatement;
  /** A savepoint before insertReports, released, or rolled back to when a report was not new. */
  chunkBegin: SqliteStatement;
  chunkUndo: SqliteStatement;
  chunkEnd: SqliteStatement;
  /** A task's real report (REPORT_PARAMETERS) in place of its provisional error, if it has one. */
  replaceProvisional: SqliteStatement;
  /** Adds to (or takes from) a request's counts of results and errors. */
  addCounts: SqliteStatement;
  /** A task's log, in place of any it had. */
  putLog: SqliteStatement;
  /** Forgets a task's log. */
  dropLog: SqliteStatement;
}

/** Prepares the statements of putReports and resetTasks (see reports.ts), once per connection. */
export function prepareReports(db: SqliteDatabase): ReportStatements {
  const rows = (values: string) =>
    Array.from({ length: REPORTS_PER_INSERT }, () => values).join(", ");
  return {
    insertReports: db.prepare(
      `INSERT INTO reports (${REPORT}, provisional) VALUES ${rows("(?, ?, ?, ?, ?, ?, ?, ?, 0)")} ON CONFLICT DO NOTHING`,
    ),
    insertOutcomes: db.prepare(
      `INSERT INTO reports (result, error, arg_id, provisional) VALUES ${rows("(?, ?, ?, 0)")} ON CONFLICT DO NOTHING`,
    ),
    chunkBegin: db.prepare("SAVEPOINT report_chunk"),
    chunkUndo: db.prepare("ROLLBACK TO report_chunk"),
    chunkEnd: db.prepare("RELEASE report_chunk"),
    insertReport: db.prepare(
      `INSERT INTO reports (${REPORT}, provisional) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    ),
    replaceProvisional: db.prepare(
      `UPDATE reports SET (${OUTCOME_AND_FACTS}) = (?, ?, ?, ?, ?, ?, ?), provisional = 0
       WHERE arg_id = ? AND provisional = 1`,
    ),
    addCounts: db.prepare(
      "UPDATE requests SET results = results + ?, errors = errors + ? WHERE id = ?",
    ),
    putLog: db.prepare("INSERT OR REPLACE INTO logs (arg_id, log) VALUES (?, ?)"),
    dropLog: db.prepare("DELETE FROM logs WHERE arg_id = ?"),
  };
}
