import type { Kysely } from "kysely";

type KyselyModule = typeof import("kysely");

let loading: Promise<KyselyModule> | undefined;

/** Kysely, imported on first use (a program that never opens this store never loads it). */
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

/**
 * What the store's queries run on: Kysely on the pool, or a transaction of it. The tables are
 * not typed: the store's SQL is written out (see statements.ts), with its parameters.
 */
// biome-ignore lint/suspicious/noExplicitAny: the SQL is raw; its rows are typed where it runs
export type Db = Kysely<any>;

/** Runs `text` with its `$1, $2, ...` parameters, and returns its rows. */
export async function query<R>(db: Db, text: string, parameters: readonly unknown[]): Promise<R[]> {
  const { CompiledQuery } = await loadKysely();
  const result = await db.executeQuery<R>(CompiledQuery.raw(text, [...parameters]));
  return result.rows;
}
