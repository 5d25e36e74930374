// The stores the benchmarks measure: an SQLite file, or a schema of the test cluster's PostgreSQL
// (`pg:<schema>`, reached with the facts and password file that tooling/testcluster/up wrote).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const root = new URL("../../packages/", import.meta.url);

/** The test cluster's PostgreSQL as a URL with its password, or undefined when it is not up. */
export function postgresUrl() {
  const file =
    process.env.SHEEPDOG_TESTCLUSTER_FILE ??
    `${process.env.SHEEPDOG_TESTCLUSTER_DIR ?? "/var/lib/sheepdog-testcluster"}/cluster.json`;
  let facts;
  try {
    facts = JSON.parse(readFileSync(file, "utf8")).postgres;
  } catch {
    return undefined;
  }
  if (!facts) return undefined;
  const password = encodeURIComponent(readFileSync(facts.passwordFile, "utf8").trim());
  return `postgres://${facts.user}:${password}@${facts.host}:${facts.port}/${facts.database}`;
}

/** The store of a target: `pg:<schema>` or an SQLite file path. */
export async function openStore(target) {
  if (target.startsWith("pg:")) {
    const { postgresStore } = await import(new URL("store-postgres/dist/index.js", root).href);
    return postgresStore({ connectionString: postgresUrl(), schema: target.slice(3) });
  }
  const { sqliteStore } = await import(new URL("store-sqlite/dist/index.js", root).href);
  return sqliteStore({ dbfile: target });
}

/** node-postgres, from the Postgres store's dependencies. */
function pg() {
  return createRequire(new URL("store-postgres/package.json", root))("pg");
}

/** Drops the benchmarks' schemas; answers the server's version. */
export async function dropSchemas(schemas) {
  const client = new (pg().Client)({ connectionString: postgresUrl() });
  await client.connect();
  try {
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    const { rows } = await client.query("SHOW server_version");
    return rows[0].server_version;
  } finally {
    await client.end();
  }
}
