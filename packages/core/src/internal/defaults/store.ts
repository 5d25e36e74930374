import { realpathSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Store } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import { source } from "../source.js";

/*
 * With defaults/cluster.ts, the only modules of core that name backend packages: the
 * defaults built from the configuration when no store or cluster is given as a value. Each
 * is imported on first use, so a program that passes its own store never loads
 * better-sqlite3 (nor node-postgres), and one that runs locally never loads ssh2.
 */

/** Whether a dbfile names a PostgreSQL database (`postgres://` or `postgresql://`), not a file. */
export function isPostgresUrl(dbfile: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(dbfile);
}

/**
 * The dbfile's identity: for a file, its absolute path, resolving links in its directory so two
 * spellings share a store; for a PostgreSQL URL, the URL itself. A URL with a password in it is
 * refused: a dbfile shows in messages, on command lines and in `ps`, so the password comes from
 * PGPASSWORD or ~/.pgpass instead.
 */
export function dbfileKey(dbfile: string): string {
  if (isPostgresUrl(dbfile)) return checkNoPassword(dbfile);
  const absolute = resolve(dbfile);
  try {
    return join(realpathSync(dirname(absolute)), basename(absolute));
  } catch {
    return absolute;
  }
}

/** The URL, unless it holds a password (in its user part or as `?password=`). */
function checkNoPassword(url: string): string {
  let password = false;
  try {
    const parsed = new URL(url);
    password = parsed.password !== "" || parsed.searchParams.has("password");
  } catch {
    // Not a URL that parses: the Postgres store says so, without quoting it.
  }
  if (password) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      "The dbfile is a PostgreSQL URL with a password in it, which would show wherever the dbfile is shown (messages, command lines, ps). Remove the password from the URL, and put it in PGPASSWORD or a line of ~/.pgpass (host:port:database:user:password, mode 0600).",
    );
  }
  return url;
}

/**
 * The default store of a dbfile (by its {@link dbfileKey}): the PostgreSQL database of a
 * `postgres://` URL (schema `sheepdog`), else the SQLite file.
 */
export async function openDefaultStore(dbfileKey: string): Promise<Store> {
  if (isPostgresUrl(dbfileKey)) {
    const { postgresStore } = await import("@sheepdog/store-postgres");
    return postgresStore({ connectionString: dbfileKey });
  }
  const { sqliteStore } = await import("@sheepdog/store-sqlite");
  return sqliteStore({ dbfile: dbfileKey });
}
