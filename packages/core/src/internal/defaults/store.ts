import { realpathSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Store } from "@sheepdog/contracts";

/*
 * With defaults/cluster.ts, the only modules of core that name backend packages: the
 * defaults built from the configuration when no store or cluster is given as a value. Each
 * is imported on first use, so a program that passes its own store never loads
 * better-sqlite3, and one that runs locally never loads ssh2.
 */

/** The dbfile's absolute path, resolving links in its directory so two spellings share a store. */
export function dbfileKey(dbfile: string): string {
  const absolute = resolve(dbfile);
  try {
    return join(realpathSync(dirname(absolute)), basename(absolute));
  } catch {
    return absolute;
  }
}

/** The default store: the SQLite file `dbfile` (by its {@link dbfileKey}). */
export async function openDefaultStore(dbfileKey: string): Promise<Store> {
  const { sqliteStore } = await import("@sheepdog/store-sqlite");
  return sqliteStore({ dbfile: dbfileKey });
}
