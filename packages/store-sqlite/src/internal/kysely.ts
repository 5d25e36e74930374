import type { Kysely } from "kysely";
import type { SqliteDatabase } from "../sqlite-database.js";
import type { Schema } from "./schema.js";

type KyselyModule = typeof import("kysely");

let loading: Promise<KyselyModule> | undefined;

/**
 * Kysely, imported on first use. Loading its 280 modules takes about 300 ms of a process's
 * start on a small machine, more than a cold `map` spends on its SSH connection; the calls a
 * map makes (createRequest, getArgs, reports, counts, getResults) use prepared statements, so
 * a store whose file is up to date only loads Kysely for migrations and its rarer calls.
 */
export function loadKysely(): Promise<KyselyModule> {
  if (loading === undefined) {
    const attempt = import("kysely");
    loading = attempt;
    // A failed import is tried again next time.
    attempt.catch(() => {
      if (loading === attempt) loading = undefined;
    });
  }
  return loading;
}

/** A Kysely instance on `db`. */
export async function openKysely(db: SqliteDatabase): Promise<Kysely<Schema>> {
  const { Kysely, SqliteDialect } = await loadKysely();
  return new Kysely<Schema>({ dialect: new SqliteDialect({ database: db }) });
}
