import type { PostgresPool } from "./postgres-pool.js";

/** The options of {@link postgresStore} that do not say where the database is. */
export interface PostgresStoreCommonOptions {
  /**
   * The schema that holds Sheepdog's tables, created (with them) on first use if missing. It
   * must be empty or a Sheepdog schema. A lower-case SQL identifier: letters, digits and `_`.
   * @default "sheepdog"
   */
  schema?: string;
  /**
   * How long a call goes on trying while the database cannot be reached (a restart, a lost
   * network, connections refused), in milliseconds, before it fails with `STORE_IO`. Work is
   * repeated only where repeating it cannot store anything twice.
   * @default 30_000
   */
  reconnectTimeout?: number;
}

/** {@link postgresStore} on a database the store connects to, with a pool it owns. */
export interface PostgresStoreUrlOptions extends PostgresStoreCommonOptions {
  /**
   * A libpq connection URL: `postgres://user@host:5432/database` (or `postgresql://`; query
   * parameters such as `?sslmode=require&application_name=x` as node-postgres reads them).
   * Without a password in it, the password is `PGPASSWORD`, then the matching line of
   * `~/.pgpass` (or `PGPASSFILE`), which is read only when no other user may read it (mode
   * 0600), as libpq does. Missing parts come from `PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`.
   * The password never appears in messages: they name the database as `postgres://user@host:port/database`.
   */
  connectionString: string;
  /**
   * How many connections the store's pool opens at most.
   * @default 10
   */
  maxConnections?: number;
  pool?: never;
}

/** {@link postgresStore} on a pool that you made (see {@link PostgresPool}). */
export interface PostgresStorePoolOptions extends PostgresStoreCommonOptions {
  /**
   * A node-postgres `Pool`, or anything with the methods of {@link PostgresPool}. It stays
   * yours: `close()` leaves it open. Give it an `error` listener (`pool.on("error", ...)`), as
   * node-postgres asks, so that an idle connection that the server drops does not crash the
   * process.
   */
  pool: PostgresPool;
  connectionString?: never;
  maxConnections?: never;
}

/**
 * Options of {@link postgresStore}: `connectionString` (a URL) or `pool` (a pool of yours),
 * exactly one of them, then `schema` and `reconnectTimeout`.
 */
export type PostgresStoreOptions = PostgresStoreUrlOptions | PostgresStorePoolOptions;
