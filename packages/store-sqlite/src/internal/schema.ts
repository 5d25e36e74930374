import type { Generated } from "kysely";

/**
 * The tables of a Sheepdog database, as Kysely sees them (schema version 5).
 *
 * Every argument tuple has a number, its arg row. A request owns the consecutive rows
 * `first_arg` to `first_arg + tasks - 1`, so task `i` is row `first_arg + i`, and a task's
 * report is keyed by that same row. The arguments themselves are stored in slices of
 * consecutive rows (`arg_slices`): a million arguments are a thousand rows to write, not a
 * million. Lookups and range scans all go by SQLite's integer row id, the fastest key it has,
 * and each table is one b-tree with no second index to keep up.
 */
export interface Schema {
  requests: RequestsTable;
  arg_slices: ArgSlicesTable;
  reports: ReportsTable;
  logs: LogsTable;
}

export interface RequestsTable {
  /** AUTOINCREMENT, so that ids only ever increase. */
  id: Generated<number>;
  func: Uint8Array;
  ns: Uint8Array;
  tasks: number;
  /** The arg row of task 0. */
  first_arg: number;
  token_hash: Uint8Array;
  created_at: number;
  /** JSON text. */
  meta: string;
  /** How many reports are results; kept with every report so that counts() is one row. */
  results: Generated<number>;
  errors: Generated<number>;
}

/**
 * The arguments of consecutive tasks of one request: `count` pickles, one after another in
 * `value`, where the one of row `id + i` ends at byte `ends[i]` (a 32-bit little-endian
 * integer) and starts where the one before it ends. A request's slices cover its rows, in
 * order, without gaps.
 */
export interface ArgSlicesTable {
  /** INTEGER PRIMARY KEY: the arg row of the slice's first argument. */
  id: number;
  request_id: number;
  count: number;
  ends: Uint8Array;
  value: Uint8Array;
}

/**
 * The first report of a task (or a real one that replaced a provisional error): exactly one of
 * `result` and `error` is set. Its facts (see `TaskFacts`) end the row, null where the report
 * told none: a read of results stops before them.
 */
export interface ReportsTable {
  /** INTEGER PRIMARY KEY: the task's arg row. */
  arg_id: number;
  result: Uint8Array | null;
  error: string | null;
  /** 1 for a provisional error (inferred, not reported: a real report replaces it), else 0. */
  provisional: Generated<number>;
  started_at: number | null;
  ended_at: number | null;
  host: string | null;
  peak_memory_bytes: number | null;
  attempt: number | null;
}

/**
 * The log that came with a task's report (the tail of what its call printed), if it had one: a
 * row exists only beside a row of `reports`, and goes with it. A table of its own, so that
 * reading results or facts never walks past logs.
 */
export interface LogsTable {
  /** INTEGER PRIMARY KEY: the task's arg row, as in `reports`. */
  arg_id: number;
  log: string;
}
