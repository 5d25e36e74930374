import type { Generated } from "kysely";

/** The tables of a Sheepdog database, as Kysely sees them (schema version 1). */
export interface Schema {
  requests: RequestsTable;
  args: ArgsTable;
  reports: ReportsTable;
}

export interface RequestsTable {
  /** AUTOINCREMENT, so that ids only ever increase. */
  id: Generated<number>;
  func: Uint8Array;
  ns: Uint8Array;
  tasks: number;
  token_hash: Uint8Array;
  created_at: number;
  /** JSON text. */
  meta: string;
  /** How many reports are results; kept with every report so that counts() is one row. */
  results: Generated<number>;
  errors: Generated<number>;
}

export interface ArgsTable {
  request_id: number;
  idx: number;
  value: Uint8Array;
}

/** The first report of a task: exactly one of `result` and `error` is set. */
export interface ReportsTable {
  request_id: number;
  idx: number;
  result: Uint8Array | null;
  error: string | null;
}
