import type { SqliteDatabase, SqliteStatement } from "../sqlite-database.js";
import { cells } from "./rows.js";
import { SMALL_VALUE_BYTES } from "./small-values.js";

/**
 * Reads of many rows as a few long strings: SQLite joins the rows' ids, their lengths
 * (`"19,19,-1,..."`) and the hex of their small values, and JavaScript turns each hex string
 * into one buffer and hands out views of it. Reading a million small values row by row makes a
 * million Buffers (an ArrayBuffer and a backing store each): this makes one buffer per slice of
 * rows, and reads arguments about six times, results about twice, as fast.
 *
 * group_concat joins rows in the order it meets them, which for these range scans of the
 * primary key is ascending; SQLite does not promise it (an ORDER BY inside the aggregate would,
 * at the cost of a sort that undoes the gain), so the ids come along and {@link inOrder} checks
 * them: a slice that came back in another order is read again row by row. Every aggregate of
 * one SELECT meets the rows in the same order, so the ids speak for the other columns too.
 *
 * Values larger than SMALL_VALUE_BYTES are left out of the hex and read on their own.
 */
export interface PackedStatements {
  /** args rows `[from, to)`: ids, lengths, hex. */
  args: SqliteStatement;
  /** args rows `[from, to)` with their results: ids, arg lengths, arg hex, result lengths (-1: none), result hex. */
  results: SqliteStatement;
  /** The results of args rows `[from, to)`: ids, result lengths (-1: none), result hex. */
  resultsOnly: SqliteStatement;
  /** One large argument by row id. */
  largeArg: SqliteStatement;
  /** One large result by row id. */
  largeResult: SqliteStatement;
}

const small = (column: string) =>
  `group_concat(CASE WHEN length(${column}) <= ${SMALL_VALUE_BYTES} THEN hex(${column}) ELSE '' END, '')`;

/**
 * Prepares the packed reads, or undefined when this database cannot (not SQLite's full SQL):
 * the store then reads row by row.
 */
export function preparePacked(
  db: SqliteDatabase,
  raw: (statement: SqliteStatement) => SqliteStatement,
): PackedStatements | undefined {
  try {
    return {
      args: raw(
        db.prepare(
          `SELECT group_concat(a.id, ','), group_concat(length(a.value), ','), ${small("a.value")}
           FROM args a WHERE a.id >= ? AND a.id < ?`,
        ),
      ),
      results: raw(
        db.prepare(
          `SELECT group_concat(a.id, ','), group_concat(length(a.value), ','), ${small("a.value")},
                  group_concat(coalesce(length(r.result), -1), ','), ${small("r.result")}
           FROM args a LEFT JOIN reports r ON r.arg_id = a.id WHERE a.id >= ? AND a.id < ?`,
        ),
      ),
      resultsOnly: raw(
        db.prepare(
          `SELECT group_concat(a.id, ','), group_concat(coalesce(length(r.result), -1), ','), ${small("r.result")}
           FROM args a LEFT JOIN reports r ON r.arg_id = a.id WHERE a.id >= ? AND a.id < ?`,
        ),
      ),
      largeArg: raw(db.prepare("SELECT value FROM args WHERE id = ?")),
      largeResult: raw(db.prepare("SELECT result FROM reports WHERE arg_id = ?")),
    };
  } catch {
    return undefined;
  }
}

/** A large value by row id (with {@link PackedStatements.largeArg} or `largeResult`). */
export function readLarge(statement: SqliteStatement, row: number): Uint8Array {
  return cells(statement.all([row])[0])[0] as Uint8Array;
}

/** Whether joined ids are `from, from + 1, ..., from + count - 1`, in that order. */
export function inOrder(ids: unknown, from: number, count: number): boolean {
  if (typeof ids !== "string") return false;
  let at = 0;
  for (let i = 0; i < count; i++) {
    const comma = i === count - 1 ? ids.length : ids.indexOf(",", at);
    if (comma < 0 || Number(ids.slice(at, comma)) !== from + i) return false;
    at = comma + 1;
  }
  return at === ids.length + 1;
}

/**
 * The values of `count` rows from their joined lengths and hex: a view into one buffer for each
 * small value, `null` for a length of -1, and `large(i)` for a value too large for the hex.
 */
export function unpack(
  lengths: unknown,
  hex: unknown,
  count: number,
  large: (i: number) => Uint8Array,
): (Uint8Array | null)[] {
  const sizes = typeof lengths === "string" && lengths !== "" ? lengths.split(",") : [];
  if (sizes.length !== count) {
    throw new Error(`a packed read returned ${sizes.length} lengths for ${count} rows`);
  }
  const text = typeof hex === "string" ? hex : "";
  const slab = Buffer.from(text, "hex");
  if (slab.byteLength * 2 !== text.length) throw new Error("a packed read returned bad hex");
  const values: (Uint8Array | null)[] = new Array(count);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const size = Number(sizes[i]);
    if (size < 0) {
      values[i] = null;
    } else if (size > SMALL_VALUE_BYTES) {
      values[i] = large(i);
    } else {
      values[i] = new Uint8Array(slab.buffer, slab.byteOffset + offset, size);
      offset += size;
    }
  }
  if (offset !== slab.byteLength) throw new Error("a packed read's lengths do not match its hex");
  return values;
}
