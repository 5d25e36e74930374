import type { SqliteDatabase, SqliteStatement } from "../sqlite-database.js";
import type { PackedStatements } from "./packed.js";
import { preparePacked } from "./packed.js";
import { rawRows } from "./rows.js";
import { smallAsHex } from "./small-values.js";

/** The statements that read arguments, reports and results. */
export interface ReadStatements {
  /** The arg slices that hold rows `[from, to)`, in order: parameters `[from, from, to]`. */
  slicesIn: SqliteStatement;
  /** The arg slice that holds row `row`. */
  sliceAt: SqliteStatement;
  /** The arg rows in `[from, to)` that have a report. */
  reportedIn: SqliteStatement;
  /** How many of arg rows `[from, to)` have a report. */
  reportedCount: SqliteStatement;
  /** The reports of arg rows `[from, to)`: row, result (see small-values.ts). */
  resultsIn: SqliteStatement;
  /** Reads of many rows as a few strings, where this SQLite can (see packed.ts). */
  packed: PackedStatements | undefined;
}

const slice = "SELECT id, count, ends, value FROM arg_slices";

export function prepareReads(db: SqliteDatabase): ReadStatements {
  return {
    slicesIn: rawRows(
      db.prepare(
        `${slice} WHERE id >= coalesce((SELECT max(id) FROM arg_slices WHERE id <= ?), ?)
         AND id < ? ORDER BY id`,
      ),
    ),
    sliceAt: rawRows(db.prepare(`${slice} WHERE id <= ? ORDER BY id DESC LIMIT 1`)),
    reportedIn: rawRows(
      db.prepare("SELECT arg_id FROM reports WHERE arg_id >= ? AND arg_id < ? ORDER BY arg_id"),
    ),
    reportedCount: rawRows(
      db.prepare("SELECT count(*) FROM reports WHERE arg_id >= ? AND arg_id < ?"),
    ),
    resultsIn: rawRows(
      db.prepare(
        `SELECT arg_id, ${smallAsHex("result")} FROM reports
         WHERE arg_id >= ? AND arg_id < ? ORDER BY arg_id`,
      ),
    ),
    packed: preparePacked(db, rawRows),
  };
}
