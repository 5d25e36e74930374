import type { SqliteDatabase, SqliteStatement } from "../sqlite-database.js";

/** How many argument rows one INSERT statement carries in createRequest. */
export const ARGS_PER_INSERT = 200;

/** The statements that create a request. */
export interface RequestStatements {
  /** The args row id that a new request's task 0 takes. */
  nextArg: SqliteStatement;
  insertRequest: SqliteStatement;
  setTasks: SqliteStatement;
  /** One args row. */
  insertArg: SqliteStatement;
  /** ARGS_PER_INSERT args rows. */
  insertArgs: SqliteStatement;
}

/** Prepares the statements of createRequest (see requests.ts), once per connection. */
export function prepareRequests(db: SqliteDatabase): RequestStatements {
  const argsRows = Array.from({ length: ARGS_PER_INSERT }, () => "(?, ?, ?)").join(", ");
  return {
    nextArg: db.prepare("SELECT coalesce(max(id), 0) + 1 FROM args"),
    insertRequest: db.prepare(
      `INSERT INTO requests (func, ns, tasks, first_arg, token_hash, created_at, meta)
       VALUES (?, ?, 0, ?, ?, ?, ?)`,
    ),
    setTasks: db.prepare("UPDATE requests SET tasks = ? WHERE id = ?"),
    insertArg: db.prepare("INSERT INTO args (id, request_id, value) VALUES (?, ?, ?)"),
    insertArgs: db.prepare(`INSERT INTO args (id, request_id, value) VALUES ${argsRows}`),
  };
}
