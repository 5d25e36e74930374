import { resolve } from "node:path";
import { SheepdogError } from "@sheepdog/contracts";
import type { SqliteDatabase } from "../sqlite-database.js";
import type { SqliteStoreOptions } from "../sqlite-store.js";
import type { StoreTarget } from "./connection.js";
import { source } from "./errors.js";

/** {@link SqliteStoreOptions}, checked, with the name the database goes by in messages. */
export interface CheckedOptions {
  target: StoreTarget;
  busyTimeout: number;
  /** The database file (absolute), or a description of the database that was passed in. */
  file: string;
}

const optionNames = ["database", "busyTimeout"] as const;
const optionHints: Record<string, string> = {
  dbfile: "database",
  path: "database",
  file: "database",
  filename: "database",
  db: "database",
  timeout: "busyTimeout",
  busy_timeout: "busyTimeout",
};

function configInvalid(message: string): SheepdogError {
  return new SheepdogError("CONFIG_INVALID", source, message);
}

/** Checks sqliteStore's options: CONFIG_INVALID names what is wrong and what to pass. */
export function checkOptions(options: SqliteStoreOptions): CheckedOptions {
  if (typeof options !== "object" || options === null) {
    throw configInvalid(
      'sqliteStore needs options: sqliteStore({ database: "./sheepdog.sqlite" }).',
    );
  }
  for (const key of Object.keys(options)) {
    if ((optionNames as readonly string[]).includes(key)) continue;
    const hint = optionHints[key] ?? optionHints[key.toLowerCase()];
    throw configInvalid(
      `Unknown option "${key}" for sqliteStore. ${hint ? `Did you mean "${hint}"?` : `Known options: ${optionNames.join(", ")}.`}`,
    );
  }
  const { database, busyTimeout = 30_000 } = options;
  const isDatabase =
    typeof database === "object" &&
    database !== null &&
    typeof (database as SqliteDatabase).prepare === "function";
  if (!(typeof database === "string" && database !== "") && !isDatabase) {
    throw configInvalid(
      "The database option must be a file path or an open better-sqlite3 Database.",
    );
  }
  if (typeof busyTimeout !== "number" || !(busyTimeout >= 0) || busyTimeout === Infinity) {
    throw configInvalid(
      `busyTimeout must be a number of milliseconds (0 or more), not ${String(busyTimeout)}.`,
    );
  }
  if (typeof database === "string") {
    const file = database === ":memory:" ? "the in-memory database" : resolve(database);
    return { target: { dbfile: database }, busyTimeout, file };
  }
  const file = typeof database.name === "string" ? database.name : "the database passed in";
  return { target: { database }, busyTimeout, file };
}
