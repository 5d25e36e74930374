import type { SqliteDatabase, SqliteStatement } from "../sqlite-database.js";
import type { PackedStatements } from "./packed.js";
import { preparePacked } from "./packed.js";
import { rawRows } from "./rows.js";
import { smallAsHex } from "./small-values.js";

/** The statements that read arguments, reports and results. */
export interface ReadStatements {
  /** The values of args rows `[from, to)`, in order. */
  args: SqliteStatement;
  /** The args rows in `[from, to)` that have a report. */
  reportedIn: SqliteStatement;
  /** How many of args rows `[from, to)` have a report. */
  reportedCount: SqliteStatement;
  /** Args rows `[from, to)` with their results (see small-values.ts). */
  resultsIn: SqliteStatement;
  /** Reads of many rows as a few strings, where this SQLite can (see packed.ts). */
  packed: PackedStatements | undefined;
}

export function prepareReads(db: SqliteDatabase): ReadStatements {
  return {
    args: db.prepare("SELECT value FROM args WHERE id >= ? AND id < ? ORDER BY id"),
    reportedIn: rawRows(
      db.prepare("SELECT arg_id FROM reports WHERE arg_id >= ? AND arg_id < ? ORDER BY arg_id"),
    ),
    reportedCount: rawRows(
      db.prepare("SELECT count(*) FROM reports WHERE arg_id >= ? AND arg_id < ?"),
    ),
    resultsIn: rawRows(
      db.prepare(
        `SELECT a.id, ${smallAsHex("a.value")}, ${smallAsHex("r.result")}
         FROM args a LEFT JOIN reports r ON r.arg_id = a.id WHERE a.id >= ? AND a.id < ?`,
      ),
    ),
    packed: preparePacked(db, rawRows),
  };
}
