import type { SqliteDatabase, SqliteStatement } from "../sqlite-database.js";
import { cells } from "./rows.js";
import { SMALL_VALUE_BYTES } from "./small-values.js";

/**
 * Reads of many rows as a few long strings: SQLite joins the rows' ids, their lengths
 * (`"19,19,-1,..."`) and the hex of their small values, and JavaScript turns each hex string
 * into one buffer and hands out views of it. Reading a million small values row by row makes a
 * million Buffers (an ArrayBuffer and a backing store each): this makes one buffer per slice of
 * rows, and reads results about twice as fast.
 *
 * group_concat joins rows in the order it meets them, which for these range scans of the
 * primary key is ascending; SQLite does not promise it (an ORDER BY inside the aggregate would,
 * at the cost of a sort that undoes the gain), so the ids come along and {@link ascendingIds}
 * checks them: a slice that came back in another order is read again row by row. Every
 * aggregate of one SELECT meets the rows in the same order, so the ids speak for the other
 * columns too.
 *
 * Values larger than SMALL_VALUE_BYTES are left out of the hex and read on their own.
 */
export interface PackedStatements {
  /** The reports of arg rows `[from, to)`: ids, result lengths (-1: none), result hex. */
  results: SqliteStatement;
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
      results: raw(
        db.prepare(
          `SELECT group_concat(arg_id, ','), group_concat(coalesce(length(result), -1), ','), ${small("result")}
           FROM reports WHERE arg_id >= ? AND arg_id < ?`,
        ),
      ),
      largeResult: raw(db.prepare("SELECT result FROM reports WHERE arg_id = ?")),
    };
  } catch {
    return undefined;
  }
}

/** A large result by row id (with {@link PackedStatements.largeResult}). */
export function readLarge(statement: SqliteStatement, row: number): Uint8Array {
  return cells(statement.all([row])[0])[0] as Uint8Array;
}

/**
 * Joined ids (`"4,5,9"`) as numbers, if they ascend and lie in `[from, to)`; else undefined.
 * No rows join to null.
 */
export function ascendingIds(ids: unknown, from: number, to: number): number[] | undefined {
  if (ids === null) return [];
  const list = joinedIntegers(ids);
  if (list === undefined) return undefined;
  let last = from - 1;
  for (const id of list) {
    if (id <= last || id >= to) return undefined;
    last = id;
  }
  return list;
}

/** The comma is the separator of group_concat here; digits and the minus sign make a number. */
const COMMA = 44;
const MINUS = 45;
const ZERO = 48;

/**
 * Joined integers (`"19,-1,0"`) as numbers, or undefined if the text is anything else. Read
 * digit by digit: splitting made a string for each of a million values, and parsing them took
 * more time than SQLite's joining them.
 */
export function joinedIntegers(text: unknown): number[] | undefined {
  if (typeof text !== "string" || text === "") return undefined;
  const list: number[] = [];
  let value = 0;
  let digits = 0;
  let sign = 1;
  for (let i = 0; i <= text.length; i++) {
    const code = i < text.length ? text.charCodeAt(i) : COMMA;
    if (code === COMMA) {
      if (digits === 0) return undefined;
      list.push(sign * value);
      value = 0;
      digits = 0;
      sign = 1;
    } else if (code === MINUS && digits === 0 && sign === 1) {
      sign = -1;
    } else if (code >= ZERO && code <= ZERO + 9 && digits < 15) {
      value = value * 10 + (code - ZERO);
      digits += 1;
    } else {
      return undefined;
    }
  }
  return list;
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
  const sizes = lengths === null || lengths === "" ? [] : joinedIntegers(lengths);
  if (sizes?.length !== count) {
    if (sizes === undefined) throw new Error("a packed read returned bad lengths");
    throw new Error(`a packed read returned ${sizes.length} lengths for ${count} rows`);
  }
  const text = typeof hex === "string" ? hex : "";
  const slab = Buffer.from(text, "hex");
  if (slab.byteLength * 2 !== text.length) throw new Error("a packed read returned bad hex");
  const values: (Uint8Array | null)[] = new Array(count);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const size = sizes[i] as number;
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
