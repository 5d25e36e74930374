import type { SqliteDatabase, SqliteStatement } from "../sqlite-database.js";

/** The statements that create a request. */
export interface RequestStatements {
  /** The arg row that a new request's task 0 takes: the one after every request's last. */
  nextArg: SqliteStatement;
  insertRequest: SqliteStatement;
  setTasks: SqliteStatement;
  /** One row of `arg_slices`. */
  insertSlice: SqliteStatement;
}

/** Prepares the statements of createRequest (see requests.ts), once per connection. */
export function prepareRequests(db: SqliteDatabase): RequestStatements {
  return {
    nextArg: db.prepare("SELECT coalesce(max(first_arg + tasks), 1) FROM requests"),
    insertRequest: db.prepare(
      `INSERT INTO requests (func, ns, tasks, first_arg, token_hash, created_at, meta)
       VALUES (?, ?, 0, ?, ?, ?, ?)`,
    ),
    setTasks: db.prepare("UPDATE requests SET tasks = ? WHERE id = ?"),
    insertSlice: db.prepare(
      "INSERT INTO arg_slices (id, request_id, count, ends, value) VALUES (?, ?, ?, ?, ?)",
    ),
  };
}
