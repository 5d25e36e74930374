import { SheepdogError } from "@sheepdog/contracts";

export const source = "store-sqlite";

/** The SQLite result code of a better-sqlite3 error ("SQLITE_BUSY", "SQLITE_IOERR_WRITE", ...). */
export function sqliteCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_") ? code : undefined;
}

/** Whether another connection holds the lock this statement needed. */
export function isBusy(error: unknown): boolean {
  const code = sqliteCode(error);
  return code !== undefined && (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"));
}

/** Rows that SQLite read well but that cannot be what this store wrote: the file was damaged. */
export class DamagedRows extends Error {}

/**
 * Turns whatever better-sqlite3 threw into a SheepdogError that names the file: STORE_CORRUPT
 * for a damaged file or one that is not a database, STORE_IO for everything else the file
 * system or SQLite refused, INTERNAL for anything else (a bug). A SheepdogError passes through
 * unchanged.
 */
export function storeError(error: unknown, file: string): SheepdogError {
  if (SheepdogError.isInstance(error)) return error;
  const code = sqliteCode(error);
  const detail = error instanceof Error ? error.message : String(error);
  if (
    code === "SQLITE_NOTADB" ||
    code?.startsWith("SQLITE_CORRUPT") ||
    error instanceof DamagedRows
  ) {
    return new SheepdogError(
      "STORE_CORRUPT",
      source,
      `${file} is damaged or is not a database (${detail}). It was left untouched: restore it from a backup, or use another dbfile.`,
      { cause: error },
    );
  }
  if (code?.startsWith("SQLITE_READONLY") || code === "SQLITE_PERM") {
    return new SheepdogError(
      "STORE_IO",
      source,
      `${file} cannot be written (${detail}). Check the permissions of the file and of its directory, or use another dbfile.`,
      { cause: error },
    );
  }
  if (code === "SQLITE_FULL") {
    return new SheepdogError(
      "STORE_IO",
      source,
      `${file} cannot grow: the disk is full (${detail}). Free some space, or use a dbfile on another disk.`,
      { cause: error },
    );
  }
  if (code !== undefined || typeof (error as { errno?: unknown } | null)?.errno === "number") {
    return new SheepdogError(
      "STORE_IO",
      source,
      `${file} could not be used (${detail}). Check that the file is readable and writable and its disk is healthy.`,
      { cause: error },
    );
  }
  return new SheepdogError(
    "INTERNAL",
    source,
    `Unexpected failure while using ${file}: ${detail}. This is a bug in @sheepdog/store-sqlite: please report it.`,
    { cause: error },
  );
}

export function closedError(): SheepdogError {
  return new SheepdogError(
    "CLOSED",
    source,
    "This store is closed. Open a new one with sqliteStore().",
  );
}

export function requestNotFound(id: unknown): SheepdogError {
  return new SheepdogError(
    "REQUEST_NOT_FOUND",
    source,
    `There is no request ${String(id)} in this database. Check the id, and that it is the dbfile the request was made with.`,
  );
}

export function taskNotFound(id: number, index: unknown, tasks: number): SheepdogError {
  const range = tasks === 0 ? "it has no tasks" : `its tasks are 0 to ${tasks - 1}`;
  return new SheepdogError(
    "TASK_NOT_FOUND",
    source,
    `Request ${id} has no task ${String(index)}: ${range}.`,
  );
}

export function invalidInput(message: string): SheepdogError {
  return new SheepdogError("INVALID_INPUT", source, message);
}
