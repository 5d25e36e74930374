import { resolve } from "node:path";
import { didYouMean, SheepdogError } from "@sheepdog/contracts";
import type { SqliteDatabase } from "../sqlite-database.js";
import type { SqliteStoreOptions } from "../sqlite-store-options.js";
import type { StoreTarget } from "./connection.js";
import { source } from "./errors.js";

/** {@link SqliteStoreOptions}, checked, with the name the database goes by in messages. */
export interface CheckedOptions {
  target: StoreTarget;
  busyTimeout: number;
  /** The database file (absolute), or a description of the database that was passed in. */
  file: string;
}

const optionNames = ["dbfile", "database", "busyTimeout"] as const;
/** Names people reach for, and the option they mean (for `didYouMean`). */
const optionHints: Record<string, string> = {
  path: "dbfile",
  file: "dbfile",
  filename: "dbfile",
  db: "dbfile",
  db_file: "dbfile",
  databasefile: "dbfile",
  database_file: "dbfile",
  timeout: "busyTimeout",
  busy_timeout: "busyTimeout",
};
const needsOne =
  'sqliteStore needs dbfile (a file path) or database (an open better-sqlite3 Database): sqliteStore({ dbfile: "./sheepdog.sqlite" }).';
const bothForms =
  "Pass dbfile for a file path, or database for an open better-sqlite3 Database, not both.";

function configInvalid(message: string): SheepdogError {
  return new SheepdogError("CONFIG_INVALID", source, message);
}

/** A value's kind, for messages: "a number", "null", "an empty string". */
function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (value === "") return "an empty string";
  const type = typeof value;
  return `${/^[aeiou]/.test(type) ? "an" : "a"} ${type}`;
}

function checkKeys(options: object): void {
  for (const key of Object.keys(options)) {
    if ((optionNames as readonly string[]).includes(key)) continue;
    const hint = didYouMean(key, optionNames, optionHints);
    throw configInvalid(
      `Unknown option "${key}" for sqliteStore. ${hint ? `Did you mean "${hint}"?` : `Known options: ${optionNames.join(", ")}.`}`,
    );
  }
}

function isDatabase(value: unknown): value is SqliteDatabase {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as SqliteDatabase).prepare === "function"
  );
}

/** Where the data is: `{ dbfile }` or `{ database }`, exactly one of them, well-formed. */
function checkTarget({ dbfile, database }: { dbfile?: unknown; database?: unknown }): StoreTarget {
  if (dbfile !== undefined && database !== undefined) {
    throw configInvalid(`sqliteStore got both dbfile and database. ${bothForms}`);
  }
  if (dbfile !== undefined) {
    if (typeof dbfile === "string" && dbfile !== "") return { dbfile };
    throw configInvalid(
      `dbfile must be a file path (a non-empty string), not ${kindOf(dbfile)}. For an open better-sqlite3 Database, pass database instead.`,
    );
  }
  if (database !== undefined) {
    if (isDatabase(database)) return { database };
    throw configInvalid(
      `database must be an open better-sqlite3 Database (an object with prepare()), not ${kindOf(database)}. For a file path, pass dbfile instead: sqliteStore({ dbfile: "./sheepdog.sqlite" }).`,
    );
  }
  throw configInvalid(needsOne);
}

/** Checks sqliteStore's options: CONFIG_INVALID names what is wrong and what to pass. */
export function checkOptions(options: SqliteStoreOptions): CheckedOptions {
  if (typeof options !== "object" || options === null) throw configInvalid(needsOne);
  checkKeys(options);
  const target = checkTarget(options);
  const { busyTimeout = 30_000 } = options;
  if (typeof busyTimeout !== "number" || !(busyTimeout >= 0) || busyTimeout === Infinity) {
    throw configInvalid(
      `busyTimeout must be a number of milliseconds (0 or more), not ${String(busyTimeout)}.`,
    );
  }
  return { target, busyTimeout, file: nameOf(target) };
}

/** The database's name in messages: its absolute path, or a description. */
function nameOf(target: StoreTarget): string {
  if ("dbfile" in target) {
    return target.dbfile === ":memory:" ? "the in-memory database" : resolve(target.dbfile);
  }
  const { name } = target.database;
  return typeof name === "string" ? name : "the database passed in";
}
