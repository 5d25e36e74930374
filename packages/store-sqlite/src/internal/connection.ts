import type { Kysely } from "kysely";
import type { SqliteDatabase, SqliteStatement } from "../sqlite-database.js";
import { storeError } from "./errors.js";
import type { FactsStatements } from "./facts.js";
import { prepareFacts } from "./facts.js";
import { openKysely } from "./kysely.js";
import type { SchemaSteps } from "./migrations.js";
import { openFile } from "./open-file.js";
import type { ReadStatements } from "./read-statements.js";
import { prepareReads } from "./read-statements.js";
import type { ReportStatements } from "./report-statements.js";
import { prepareReports } from "./report-statements.js";
import type { RequestInfoStatements } from "./request-info-statements.js";
import { prepareRequestInfo } from "./request-info-statements.js";
import type { RequestStatements } from "./request-statements.js";
import { prepareRequests } from "./request-statements.js";
import type { Schema } from "./schema.js";
import { setUpDatabase } from "./setup.js";
import { Shapes } from "./shapes.js";

/** Where a store's data is: a file it opens (and closes), or a database passed in. */
export type StoreTarget = { dbfile: string } | { database: SqliteDatabase };

/** An open database, set up, and the statements prepared on it, each once. */
export interface Connection {
  db: SqliteDatabase;
  /** Whether the store opened the database (and so closes it). */
  owned: boolean;
  closed: boolean;
  /** Kysely on this database, made on first use (see kysely.ts and {@link kyselyOf}). */
  kysely: Promise<Kysely<Schema>> | undefined;
  /** BEGIN IMMEDIATE: a write transaction, holding the write lock from its start. */
  begin: SqliteStatement;
  /** BEGIN: a read transaction, so that the reads in it see one moment. */
  beginRead: SqliteStatement;
  commit: SqliteStatement;
  shapes: Shapes;
  requests: RequestStatements;
  info: RequestInfoStatements;
  reports: ReportStatements;
  reads: ReadStatements;
  facts: FactsStatements;
}

/**
 * Opens the target (a file with better-sqlite3, loaded only now), makes it a Sheepdog database
 * of the latest version, and prepares the statements. A database the store opened is closed
 * again when this fails. `file` names the database in errors.
 */
export async function openConnection(
  target: StoreTarget,
  schema: SchemaSteps,
  busyTimeout: number,
  file: string,
): Promise<Connection> {
  const owned = "dbfile" in target;
  const db = owned
    ? await openFile(target.dbfile === ":memory:" ? target.dbfile : file)
    : target.database;
  try {
    const kysely = await setUpDatabase(db, schema, busyTimeout, file);
    return {
      db,
      owned,
      closed: false,
      kysely: kysely && Promise.resolve(kysely),
      begin: db.prepare("BEGIN IMMEDIATE"),
      beginRead: db.prepare("BEGIN"),
      commit: db.prepare("COMMIT"),
      shapes: new Shapes(db),
      requests: prepareRequests(db),
      info: prepareRequestInfo(db),
      reports: prepareReports(db),
      reads: prepareReads(db),
      facts: prepareFacts(db),
    };
  } catch (error) {
    if (owned) {
      try {
        db.close();
      } catch {
        // Already failing; the first error is the one to report.
      }
    }
    throw storeError(error, file);
  }
}

/** Kysely on the connection, made on first use; a failed import is tried again next time. */
export function kyselyOf(c: Connection): Promise<Kysely<Schema>> {
  if (c.kysely === undefined) {
    const opening = openKysely(c.db);
    c.kysely = opening;
    opening.catch(() => {
      if (c.kysely === opening) c.kysely = undefined;
    });
  }
  return c.kysely;
}

/**
 * Closes the connection: later calls on it fail with CLOSED. A database passed in stays open
 * for its owner; Kysely's destroy() closes one the store opened, if Kysely was loaded.
 */
export async function closeConnection(c: Connection): Promise<void> {
  if (c.closed) return;
  c.closed = true;
  if (!c.owned) return;
  const kysely = await c.kysely?.catch(() => undefined);
  if (kysely) await kysely.destroy();
  else c.db.close();
}
