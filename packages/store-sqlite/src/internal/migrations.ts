import { SheepdogError } from "@sheepdog/contracts";
import type { Kysely } from "kysely";
import type { PackedSlice } from "./arg-slices.js";
import { SlicePacker } from "./arg-slices.js";
import { source } from "./errors.js";
import { loadKysely } from "./kysely.js";
import type { Schema } from "./schema.js";

/**
 * One step of the schema. A migration only adds to what the steps before it made, and is
 * never edited once released: a file of version N is brought to the latest version by running
 * the steps after N, in order, in one transaction.
 */
export interface Migration {
  /** The schema version this step produces (1, 2, ...). */
  version: number;
  name: string;
  // biome-ignore lint/suspicious/noExplicitAny: a migration runs before the schema it describes exists
  up(db: Kysely<any>): Promise<void>;
}

/** `PRAGMA application_id` of a Sheepdog database: "SHDG". */
export const APPLICATION_ID = 0x53484447;

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: "requests, args and reports",
    async up(db) {
      const { sql } = await loadKysely();
      await db.schema
        .createTable("requests")
        .addColumn("id", "integer", (c) => c.primaryKey().autoIncrement())
        .addColumn("func", "blob", (c) => c.notNull())
        .addColumn("ns", "blob", (c) => c.notNull())
        .addColumn("tasks", "integer", (c) => c.notNull())
        .addColumn("first_arg", "integer", (c) => c.notNull())
        .addColumn("token_hash", "blob", (c) => c.notNull())
        .addColumn("created_at", "integer", (c) => c.notNull())
        .addColumn("meta", "text", (c) => c.notNull())
        .addColumn("results", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("errors", "integer", (c) => c.notNull().defaultTo(0))
        .execute();
      // Keyed by row id alone (see schema.ts): task i of a request is row first_arg + i.
      await db.schema
        .createTable("args")
        .addColumn("id", "integer", (c) => c.primaryKey())
        .addColumn("request_id", "integer", (c) => c.notNull())
        .addColumn("value", "blob", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("reports")
        .addColumn("arg_id", "integer", (c) => c.primaryKey())
        .addColumn("result", "blob")
        .addColumn("error", "text")
        .addCheckConstraint("one_outcome", sql`(result IS NULL) <> (error IS NULL)`)
        .execute();
    },
  },
  {
    version: 2,
    name: "provisional errors",
    async up(db) {
      // An error inferred from the scheduler (a task that ended without reporting), which a
      // real report replaces: see Store.putError.
      await db.schema
        .alterTable("reports")
        .addColumn("provisional", "integer", (c) => c.notNull().defaultTo(0))
        .execute();
    },
  },
  {
    version: 3,
    name: "task facts and logs",
    async up(db) {
      // What a worker told of a call beside its report (see TaskFacts), keyed by the report's
      // row: a table of its own, so that reading results never walks past logs, and reading
      // facts never walks past results. The log comes last, so a row's other facts are read
      // without reading it.
      await db.schema
        .createTable("facts")
        .addColumn("arg_id", "integer", (c) => c.primaryKey())
        .addColumn("started_at", "real")
        .addColumn("ended_at", "real")
        .addColumn("host", "text")
        .addColumn("peak_memory_bytes", "integer")
        .addColumn("attempt", "integer")
        .addColumn("log", "text")
        .execute();
    },
  },
  {
    version: 4,
    name: "arguments in slices",
    async up(db) {
      await db.schema
        .createTable("arg_slices")
        .addColumn("id", "integer", (c) => c.primaryKey())
        .addColumn("request_id", "integer", (c) => c.notNull())
        .addColumn("count", "integer", (c) => c.notNull())
        .addColumn("ends", "blob", (c) => c.notNull())
        .addColumn("value", "blob", (c) => c.notNull())
        .execute();
      await packArgs(db);
      await db.schema.dropTable("args").execute();
    },
  },
  {
    version: 5,
    name: "facts in the reports' rows, logs apart",
    async up(db) {
      // A report and its facts were two rows in two b-trees: half the cost of storing a
      // million reports went to the second. The facts now end the report's row, after what a
      // read of results needs; logs, which can be long, keep a table of their own.
      const { sql } = await loadKysely();
      for (const [name, type] of FACT_COLUMNS) {
        await db.schema.alterTable("reports").addColumn(name, type).execute();
      }
      await db.schema
        .createTable("logs")
        .addColumn("arg_id", "integer", (c) => c.primaryKey())
        .addColumn("log", "text", (c) => c.notNull())
        .execute();
      await sql`INSERT INTO logs (arg_id, log) SELECT arg_id, log FROM facts WHERE log IS NOT NULL`.execute(
        db,
      );
      await sql`UPDATE reports SET started_at = f.started_at, ended_at = f.ended_at, host = f.host,
                  peak_memory_bytes = f.peak_memory_bytes, attempt = f.attempt
                FROM facts f WHERE f.arg_id = reports.arg_id`.execute(db);
      await db.schema.dropTable("facts").execute();
    },
  },
];

/** The columns of a report's facts (see TaskFacts), in the order they end its row. */
const FACT_COLUMNS = [
  ["started_at", "real"],
  ["ended_at", "real"],
  ["host", "text"],
  ["peak_memory_bytes", "integer"],
  ["attempt", "integer"],
] as const;

/** How a store makes its schema: the migrations, and the latest schema as one script, if any. */
export interface SchemaSteps {
  migrations: readonly Migration[];
  script?: SchemaScript | undefined;
}

/** The whole schema of one version, as one script for an empty file: see {@link latestSchema}. */
export interface SchemaScript {
  version: number;
  /** Each table's `CREATE TABLE`, in order. */
  statements: readonly string[];
}

/**
 * What {@link migrations} make, written as SQLite keeps it (`sqlite_schema.sql`), for an empty
 * file. Running it needs no Kysely, whose loading (about 180 ms) was most of a new file's
 * set-up, on the way to a first map's job. A test holds it to the migrations' own result: a
 * new migration changes it too.
 */
export const latestSchema: SchemaScript = {
  version: 5,
  statements: [
    'CREATE TABLE "requests" ("id" integer primary key autoincrement, "func" blob not null, "ns" blob not null, "tasks" integer not null, "first_arg" integer not null, "token_hash" blob not null, "created_at" integer not null, "meta" text not null, "results" integer default 0 not null, "errors" integer default 0 not null)',
    'CREATE TABLE "reports" ("arg_id" integer primary key, "result" blob, "error" text, "provisional" integer default 0 not null, "started_at" real, "ended_at" real, "host" text, "peak_memory_bytes" integer, "attempt" integer, constraint "one_outcome" check ((result IS NULL) <> (error IS NULL)))',
    'CREATE TABLE "arg_slices" ("id" integer primary key, "request_id" integer not null, "count" integer not null, "ends" blob not null, "value" blob not null)',
    'CREATE TABLE "logs" ("arg_id" integer primary key, "log" text not null)',
  ],
};

/** How many rows of the old `args` table version 4's migration reads at a time. */
const ARGS_PER_MIGRATION_READ = 8192;

/** Moves the rows of `args` into `arg_slices`, each request's in slices of its own. */
// biome-ignore lint/suspicious/noExplicitAny: see Migration.up
async function packArgs(db: Kysely<any>): Promise<void> {
  let packer: SlicePacker | undefined;
  let request: number | undefined;
  let next = 0;
  const write = async (slice: PackedSlice | undefined) => {
    if (slice === undefined) return;
    const { first, count, ends, value } = slice;
    await db
      .insertInto("arg_slices")
      .values({ id: first, request_id: request, count, ends, value })
      .execute();
  };
  for (;;) {
    const rows: { id: number; request_id: number; value: Uint8Array }[] = await db
      .selectFrom("args")
      .select(["id", "request_id", "value"])
      .where("id", ">=", next)
      .orderBy("id")
      .limit(ARGS_PER_MIGRATION_READ)
      .execute();
    if (rows.length === 0) break;
    for (const row of rows) {
      if (row.request_id !== request || row.id !== next) {
        await write(packer?.finish());
        packer = new SlicePacker(row.id);
        request = row.request_id;
      }
      await write(packer?.add(row.value));
      next = row.id + 1;
    }
  }
  await write(packer?.finish());
}

/** The newest schema version these migrations produce. */
export function latestVersion(list: readonly Migration[]): number {
  return list.reduce((max, m) => Math.max(max, m.version), 0);
}

/** What `PRAGMA application_id`, `PRAGMA user_version` and sqlite_schema say about a file. */
export interface FileIdentity {
  applicationId: number;
  version: number;
  /** How many tables, indexes, views and triggers it holds. */
  objects: number;
}

/**
 * What to do with a file: nothing (current), migrate it (empty or older), or refuse it (another
 * application's database, or a newer Sheepdog's).
 */
export function judge(identity: FileIdentity, latest: number, file: string): "current" | "migrate" {
  if (identity.applicationId !== APPLICATION_ID) {
    if (identity.applicationId === 0 && identity.objects === 0 && identity.version === 0) {
      return "migrate";
    }
    throw new SheepdogError(
      "STORE_CORRUPT",
      source,
      `${file} is an SQLite database, but not a Sheepdog one (application_id ${identity.applicationId}, ${identity.objects} schema objects). It was left untouched: use another dbfile.`,
    );
  }
  if (identity.version > latest) {
    throw new SheepdogError(
      "STORE_VERSION",
      source,
      `${file} has schema version ${identity.version}, written by a newer Sheepdog; this @sheepdog/store-sqlite reads versions up to ${latest}. Upgrade @sheepdog/store-sqlite, or use another dbfile.`,
    );
  }
  return identity.version === latest ? "current" : "migrate";
}

/** Runs the migrations after `from`, in order. The caller holds a write transaction. */
export async function migrate(
  // biome-ignore lint/suspicious/noExplicitAny: see Migration.up
  db: Kysely<any> | Kysely<Schema>,
  list: readonly Migration[],
  from: number,
): Promise<number> {
  const steps = list.filter((m) => m.version > from).sort((a, b) => a.version - b.version);
  let version = from;
  for (const step of steps) {
    if (step.version !== version + 1) {
      throw new SheepdogError(
        "INTERNAL",
        source,
        `Migration ${step.version} ("${step.name}") does not follow version ${version}. This is a bug in @sheepdog/store-sqlite: please report it.`,
      );
    }
    // biome-ignore lint/suspicious/noExplicitAny: see Migration.up
    await step.up(db as Kysely<any>);
    version = step.version;
  }
  return version;
}
