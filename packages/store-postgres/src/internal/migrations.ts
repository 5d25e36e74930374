import { SheepdogError } from "@sheepdog/contracts";
import { source } from "./errors.js";
import type { Db } from "./kysely.js";
import { loadKysely } from "./kysely.js";

/**
 * One step of the schema, as in @sheepdog/store-sqlite: a step only adds to what the steps
 * before it made, and is never edited once released. A schema of version N is brought to the
 * latest by running the steps after N, in order, in one transaction; each step's version is
 * written to the schema's `migrations` table, whose highest row is the schema's version.
 */
export interface Migration {
  /** The schema version this step produces (1, 2, ...). */
  version: number;
  name: string;
  /** Runs the step in the schema `schema` (created already), inside the caller's transaction. */
  up(db: Db, schema: string): Promise<void>;
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: "requests, args and reports",
    async up(db, schema) {
      const { sql } = await loadKysely();
      const s = db.schema.withSchema(schema);
      await s
        .createTable("migrations")
        .addColumn("version", "integer", (c) => c.primaryKey())
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("applied_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
        .execute();
      await s
        .createTable("requests")
        .addColumn("id", "integer", (c) => c.primaryKey().generatedAlwaysAsIdentity())
        .addColumn("func", "bytea", (c) => c.notNull())
        .addColumn("ns", "bytea", (c) => c.notNull())
        .addColumn("tasks", "integer", (c) => c.notNull())
        .addColumn("token_hash", "bytea", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("meta", "text", (c) => c.notNull())
        .addColumn("results", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("errors", "integer", (c) => c.notNull().defaultTo(0))
        .execute();
      // Keyed by (request, task) alone: one b-tree each, no second index to keep up.
      await s
        .createTable("args")
        .addColumn("request_id", "integer", (c) => c.notNull())
        .addColumn("idx", "integer", (c) => c.notNull())
        .addColumn("value", "bytea", (c) => c.notNull())
        .addPrimaryKeyConstraint("args_pkey", ["request_id", "idx"])
        .execute();
      await s
        .createTable("reports")
        .addColumn("request_id", "integer", (c) => c.notNull())
        .addColumn("idx", "integer", (c) => c.notNull())
        .addColumn("result", "bytea")
        .addColumn("error", "text")
        .addPrimaryKeyConstraint("reports_pkey", ["request_id", "idx"])
        .addCheckConstraint("one_outcome", sql`(result IS NULL) <> (error IS NULL)`)
        .execute();
    },
  },
  {
    version: 2,
    name: "requests found by their token's hash",
    async up(db, schema) {
      // createRequest, when its connection is lost around COMMIT, looks its request up by the
      // token's hash (made before the request) to learn whether it was stored.
      await db.schema
        .withSchema(schema)
        .createIndex("requests_token_hash")
        .on("requests")
        .column("token_hash")
        .unique()
        .execute();
    },
  },
  {
    version: 3,
    name: "provisional errors",
    async up(db, schema) {
      // An error inferred from the scheduler (a task that ended without reporting), which a
      // real report replaces: see Store.putError.
      await db.schema
        .withSchema(schema)
        .alterTable("reports")
        .addColumn("provisional", "boolean", (c) => c.notNull().defaultTo(false))
        .execute();
    },
  },
  {
    version: 4,
    name: "task facts and logs",
    async up(db, schema) {
      // What a worker told of a call beside its report (see TaskFacts), in the report's row:
      // nullable columns, added without rewriting the table. PostgreSQL keeps a large result or
      // log out of line, so reading one column never reads the others. The log is UTF-8 bytes:
      // a program's output may hold a NUL, which text cannot.
      await db.schema
        .withSchema(schema)
        .alterTable("reports")
        .addColumn("started_at", "float8")
        .addColumn("ended_at", "float8")
        .addColumn("host", "text")
        .addColumn("peak_memory_bytes", "bigint")
        .addColumn("attempt", "integer")
        .addColumn("log", "bytea")
        .execute();
    },
  },
];

/** The newest schema version these migrations produce. */
export function latestVersion(list: readonly Migration[]): number {
  return list.reduce((max, m) => Math.max(max, m.version), 0);
}

/** What the database says about a schema. */
export interface SchemaIdentity {
  exists: boolean;
  /** How many tables, views, sequences and the like it holds. */
  objects: number;
  /** The highest version in its `migrations` table; undefined if it has none. */
  version: number | undefined;
}

/**
 * What to do with a schema: nothing (current), migrate it (missing, empty or older), or refuse
 * it (another application's tables, or a newer Sheepdog's).
 */
export function judge(
  identity: SchemaIdentity,
  latest: number,
  name: string,
): "current" | "migrate" {
  if (identity.version === undefined) {
    if (identity.objects === 0) return "migrate";
    throw new SheepdogError(
      "STORE_CORRUPT",
      source,
      `${name} holds ${identity.objects} tables or other objects, but not a Sheepdog schema (it has no migrations table). It was left untouched: pass another schema.`,
    );
  }
  if (identity.version > latest) {
    throw new SheepdogError(
      "STORE_VERSION",
      source,
      `${name} has schema version ${identity.version}, written by a newer Sheepdog; this @sheepdog/store-postgres reads versions up to ${latest}. Upgrade @sheepdog/store-postgres, or pass another schema.`,
    );
  }
  return identity.version === latest ? "current" : "migrate";
}

/**
 * Runs the migrations after `from`, in order, each recorded in the migrations table. The caller
 * holds a transaction.
 */
export async function migrate(
  db: Db,
  list: readonly Migration[],
  from: number,
  schema: string,
): Promise<number> {
  const steps = list.filter((m) => m.version > from).sort((a, b) => a.version - b.version);
  let version = from;
  for (const step of steps) {
    if (step.version !== version + 1) {
      throw new SheepdogError(
        "INTERNAL",
        source,
        `Migration ${step.version} ("${step.name}") does not follow version ${version}. This is a bug in @sheepdog/store-postgres: please report it.`,
      );
    }
    await step.up(db, schema);
    await db
      .withSchema(schema)
      .insertInto("migrations")
      .values({ version: step.version, name: step.name })
      .execute();
    version = step.version;
  }
  return version;
}
