import { SheepdogError } from "@sheepdog/contracts";
import type { Kysely } from "kysely";
import type { SqliteDatabase } from "../sqlite-database.js";
import { LOCK_SLICE_MS, retryBusy } from "./busy.js";
import { source } from "./errors.js";
import { openKysely } from "./kysely.js";
import type { FileIdentity, SchemaScript, SchemaSteps } from "./migrations.js";
import { APPLICATION_ID, judge, latestVersion, migrate } from "./migrations.js";
import { rollback } from "./rows.js";
import type { Schema } from "./schema.js";

function pragma(db: SqliteDatabase, text: string): unknown[] {
  const statement = db.prepare(`PRAGMA ${text}`);
  if (statement.reader) return statement.all([]);
  statement.run([]);
  return [];
}

function pragmaValue(db: SqliteDatabase, name: string): unknown {
  const row = pragma(db, name)[0];
  return row === undefined ? undefined : Object.values(row as object)[0];
}

function readIdentity(db: SqliteDatabase): FileIdentity {
  const objects = db.prepare("SELECT count(*) AS n FROM sqlite_schema").all([])[0] as { n: number };
  return {
    applicationId: Number(pragmaValue(db, "application_id")),
    version: Number(pragmaValue(db, "user_version")),
    objects: objects.n,
  };
}

/**
 * Makes `db` a Sheepdog database of the latest schema version, in WAL mode: a file that is not
 * one is refused unchanged, an empty or older one is migrated. Returns the Kysely instance that
 * a migration made, if one ran, so that it is not made twice.
 */
export async function setUpDatabase(
  db: SqliteDatabase,
  schema: SchemaSteps,
  busyTimeout: number,
  file: string,
): Promise<Kysely<Schema> | undefined> {
  const retry = <T>(attempt: () => T | Promise<T>) => retryBusy(attempt, busyTimeout, file);
  pragma(db, `busy_timeout = ${LOCK_SLICE_MS}`);
  // Look before touching: a file that is not a Sheepdog database is refused unchanged.
  const action = judge(await retry(() => readIdentity(db)), latestVersion(schema.migrations), file);
  if (db.readonly) return setUpReadOnly(action, file);
  await retry(() => pragma(db, "journal_mode = WAL"));
  pragma(db, "synchronous = NORMAL");
  // Checkpoint after 64 MiB of WAL rather than SQLite's 4 MiB: a checkpoint is where WAL mode
  // syncs to disk, and syncing 16 times less often tripled the rate of small writes here.
  pragma(db, "wal_autocheckpoint = 16384");
  pragma(db, "journal_size_limit = 67108864");
  if (action === "current") return undefined;
  await retry(() => db.prepare("BEGIN IMMEDIATE").run([]));
  return migrateLocked(db, schema, file);
}

/** Makes an empty file's schema from `script`; returns its version. */
function runScript(db: SqliteDatabase, script: SchemaScript): number {
  for (const statement of script.statements) db.prepare(statement).run([]);
  return script.version;
}

/** A database opened read-only is read as it is: it must have the latest schema already. */
function setUpReadOnly(action: "current" | "migrate", file: string): undefined {
  if (action === "current") return undefined;
  throw new SheepdogError(
    "STORE_IO",
    source,
    `${file} can be read but not written, and it is not yet a database of this version of Sheepdog (it needs its schema created or upgraded, which writes to it). Open it once with write permission, or use another dbfile.`,
  );
}

/**
 * Migrates inside the write transaction that the caller began, and commits it; rolls back
 * whole on a failure.
 */
async function migrateLocked(
  db: SqliteDatabase,
  schema: SchemaSteps,
  file: string,
): Promise<Kysely<Schema> | undefined> {
  const { migrations, script } = schema;
  let kysely: Kysely<Schema> | undefined;
  try {
    // Another process may have migrated the file while this one waited for the lock.
    const identity = readIdentity(db);
    const latest = latestVersion(migrations);
    if (judge(identity, latest, file) === "migrate") {
      let version: number;
      if (identity.objects === 0 && script?.version === latest) {
        version = runScript(db, script);
      } else {
        kysely = await openKysely(db);
        version = await migrate(kysely, migrations, identity.version);
      }
      pragma(db, `application_id = ${APPLICATION_ID}`);
      pragma(db, `user_version = ${version}`);
    }
    db.prepare("COMMIT").run([]);
  } catch (error) {
    rollback(db);
    throw error;
  }
  return kysely;
}
