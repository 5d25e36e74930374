import type { Db } from "./kysely.js";
import { query } from "./kysely.js";
import type { Migration, SchemaIdentity } from "./migrations.js";
import { judge, latestVersion, migrate } from "./migrations.js";

/** What the catalogue says about `schema`, and its version if it has a migrations table. */
async function readIdentity(db: Db, schema: string): Promise<SchemaIdentity> {
  const [row] = await query<{ exists: boolean; objects: number; migrations: boolean }>(
    db,
    `SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = $1) AS exists,
       (SELECT count(*)::int FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')) AS objects,
       EXISTS (SELECT FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename = 'migrations') AS migrations`,
    [schema],
  );
  const found = row ?? { exists: false, objects: 0, migrations: false };
  let version: number | undefined;
  if (found.migrations) {
    const [v] = await query<{ version: number }>(
      db,
      `SELECT coalesce(max(version), 0)::int AS version FROM "${schema}".migrations`,
      [],
    );
    version = v?.version ?? 0;
  }
  return { exists: found.exists, objects: found.objects, version };
}

/**
 * For the rest of the transaction, acts as the role that owns the schema when this user is a
 * member of it: the tables a migration makes then belong to that role (a team's, say), so that
 * every member can use them, not only the member who happened to migrate.
 */
async function actAsSchemaOwner(db: Db, schema: string): Promise<void> {
  const [row] = await query<{ owner: string | null }>(
    db,
    `SELECT quote_ident(r.rolname) AS owner FROM pg_catalog.pg_namespace n
       JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner
      WHERE n.nspname = $1 AND r.rolname <> current_user AND pg_has_role(current_user, r.oid, 'MEMBER')`,
    [schema],
  );
  if (row?.owner) await query(db, `SET LOCAL ROLE ${row.owner}`, []);
}

/**
 * Makes `schema` a Sheepdog schema of the latest version: one that is not is refused unchanged,
 * a missing, empty or older one is migrated in one transaction. Several processes opening the
 * same schema at once take turns on an advisory lock, and the later ones find it migrated.
 */
export async function setUpSchema(
  db: Db,
  schema: string,
  list: readonly Migration[],
  name: string,
): Promise<void> {
  const latest = latestVersion(list);
  // Look before touching: a schema that is not a Sheepdog one is refused unchanged.
  if (judge(await readIdentity(db, schema), latest, name) === "current") return;
  await db.transaction().execute(async (trx) => {
    await query(trx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [
      `sheepdog schema ${schema}`,
    ]);
    const identity = await readIdentity(trx, schema);
    if (judge(identity, latest, name) === "current") return;
    // Only when missing: CREATE SCHEMA IF NOT EXISTS still needs the privilege to create one.
    if (!identity.exists) await query(trx, `CREATE SCHEMA "${schema}"`, []);
    else await actAsSchemaOwner(trx, schema);
    await migrate(trx, list, identity.version ?? 0, schema);
  });
}
