import { SheepdogError } from "@sheepdog/contracts";
import type { PostgresPool as KyselyPool } from "kysely";
import type { PostgresPool, PostgresPoolClient } from "../postgres-pool.js";
import { closedError, source, sqlState, storeError } from "./errors.js";
import type { Db } from "./kysely.js";
import { loadKysely } from "./kysely.js";
import type { Migration } from "./migrations.js";
import type { CheckedOptions, StoreTarget } from "./options.js";
import { retrying } from "./retry.js";
import { setUpSchema } from "./setup.js";
import { Shapes } from "./shapes.js";
import type { Statements } from "./statements.js";
import { statements } from "./statements.js";

/** The database, set up: Kysely on the pool, the SQL of the store's schema, known shapes. */
export interface Opened {
  db: Db;
  sql: Statements;
  shapes: Shapes;
}

/** How a call runs: whether it may be tried again after a lost connection. */
export interface RunOptions {
  /** Whether the work may run again after a failure for want of the database. @default always */
  canRetry?: () => boolean;
  /** Runs even after close() was called (the reports that close() flushes). */
  whileClosing?: boolean;
}

/**
 * A store's database: opened on first use (and again after a failed open), each call tried
 * again while the database cannot be reached (up to reconnectTimeout), refused after close.
 * node-postgres' and Kysely's errors come out as SheepdogErrors that name the database (never
 * with its password).
 */
export class Database {
  readonly #options: CheckedOptions & { migrations: readonly Migration[] };
  readonly #inFlight = new Set<Promise<unknown>>();
  #opening: Promise<Opened> | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: CheckedOptions & { migrations: readonly Migration[] }) {
    this.#options = options;
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Runs `work` on the open database; see {@link RunOptions}. */
  run<T>(work: (opened: Opened) => Promise<T>, options: RunOptions = {}): Promise<T> {
    if (this.closed && !options.whileClosing) return Promise.reject(closedError());
    const { canRetry = () => true } = options;
    const running = (async () => {
      try {
        const opened = await this.#open();
        return await retrying(() => work(opened), this.#options.reconnectTimeout, canRetry);
      } catch (error) {
        throw this.#error(error);
      }
    })();
    this.#inFlight.add(running);
    const forget = () => this.#inFlight.delete(running);
    running.then(forget, forget);
    return running;
  }

  /**
   * Refuses new calls, runs `drain` (the reports queued before close), lets the calls in flight
   * finish, then ends the pool the store made. A second close() waits for the first.
   */
  close(drain: () => Promise<void>): Promise<void> {
    this.#closing ??= (async () => {
      await drain();
      await Promise.allSettled([...this.#inFlight]);
      const opened = await this.#opening?.catch(() => undefined);
      await opened?.db.destroy().catch(() => undefined);
    })();
    return this.#closing;
  }

  #open(): Promise<Opened> {
    this.#opening ??= this.#connect().catch((error: unknown) => {
      this.#opening = undefined;
      throw error;
    });
    return this.#opening;
  }

  async #connect(): Promise<Opened> {
    const { schema, name, reconnectTimeout, migrations, target } = this.#options;
    const { Kysely, PostgresDialect } = await loadKysely();
    // Kysely's PostgresPool types a result's command and rowCount more narrowly than
    // node-postgres does; the store reads neither, only rows.
    const pool = (await guardedPool(target)) as unknown as KyselyPool;
    const db: Db = new Kysely({ dialect: new PostgresDialect({ pool }) });
    const sql = statements(schema);
    try {
      await retrying(() => setUpSchema(db, schema, migrations, name), reconnectTimeout);
    } catch (error) {
      await db.destroy().catch(() => undefined);
      throw error;
    }
    return { db, sql, shapes: new Shapes(sql.requestShape) };
  }

  /** A refused login says why no password was sent, if none was; other errors as storeError. */
  #error(error: unknown): SheepdogError {
    const { target, name } = this.#options;
    const missing = "url" in target ? target.url.password.missing : undefined;
    const refused =
      sqlState(error) === "28P01" ||
      (error instanceof Error && /SASL|password must be a string/.test(error.message));
    if (missing !== undefined && refused) {
      return new SheepdogError(
        "STORE_IO",
        source,
        `${name} refused the login: ${missing}. Give the password in PGPASSWORD or a line of ~/.pgpass (mode 0600), or in the URL of a store made in code.`,
        { cause: error, detail: { sqlState: sqlState(error) } },
      );
    }
    return storeError(error, name);
  }
}

/**
 * The pool the store's Kysely runs on: the one passed in (never ended by the store), or one made
 * from the URL. Each client gets an `error` listener: node-postgres emits `error` on a client
 * whose connection the server drops between two queries, and an unheard `error` would end the
 * process; the query that follows fails instead, and is tried again on a new connection.
 */
async function guardedPool(target: StoreTarget): Promise<PostgresPool> {
  const pool = "pool" in target ? target.pool : await makePool(target);
  const heard = new WeakSet<object>();
  const ignore = () => {};
  return {
    async connect(): Promise<PostgresPoolClient> {
      const client = await pool.connect();
      if (!heard.has(client)) {
        heard.add(client);
        client.on?.("error", ignore);
      }
      return client;
    },
    end: "pool" in target ? async () => {} : () => pool.end(),
  };
}

/** A node-postgres pool on the URL (node-postgres is loaded only now). */
async function makePool(target: Extract<StoreTarget, { url: unknown }>): Promise<PostgresPool> {
  const { default: pg } = await import("pg");
  const { config } = target.url;
  const pool = new pg.Pool({
    ...config,
    application_name: (config.application_name as string | undefined) ?? "sheepdog",
    max: target.maxConnections,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 10_000,
    keepAlive: true,
    // Idle connections do not keep a program alive that has nothing else to do.
    allowExitOnIdle: true,
  });
  // An idle connection that the server drops leaves the pool; the next query opens another.
  pool.on("error", () => {});
  return pool as unknown as PostgresPool;
}
