import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import type { PostgresFacts, TestCluster } from "@sheepdog/testcluster";
import pg from "pg";

/** The test cluster's PostgreSQL, as the tests reach it. */
export interface TestPostgres {
  facts: PostgresFacts;
  /** The role's password, read from the root-only file (never print it). */
  password: string;
  /** A URL of `database` (the tests' database by default), with the password in it. */
  url(database?: string): string;
  /** A URL without the password. */
  bareUrl(database?: string): string;
  /** A pool of the tests' role on the tests' database, for what the tests do beside the store. */
  admin(): pg.Pool;
}

/** The PostgreSQL of the test cluster; fails loudly when `up` did not bring it up. */
export function testPostgres(cluster: TestCluster): TestPostgres {
  const facts = cluster.postgres;
  if (!facts) {
    throw new Error(
      "[store-postgres] The test cluster has no PostgreSQL (cluster.json says postgres: null). Run `sudo bash tooling/testcluster/up`, which runs tooling/testcluster/postgres-up.",
    );
  }
  const password = readFileSync(facts.passwordFile, "utf8").trim();
  const where = (database = facts.database) => `${facts.host}:${facts.port}/${database}`;
  return {
    facts,
    password,
    url: (database) =>
      `postgres://${facts.user}:${encodeURIComponent(password)}@${where(database)}`,
    bareUrl: (database) => `postgres://${facts.user}@${where(database)}`,
    admin: () => {
      const pool = new pg.Pool({
        host: facts.host,
        port: facts.port,
        user: facts.user,
        password,
        database: facts.database,
        max: 2,
      });
      pool.on("error", () => {});
      return pool;
    },
  };
}

/** A schema name no test has used: `test_<hex>`. */
export function throwawaySchema(prefix = "test"): string {
  return `${prefix}_${randomBytes(6).toString("hex")}`;
}

/** Drops the schemas (with what they hold); missing ones are fine. */
export async function dropSchemas(admin: pg.Pool, schemas: Iterable<string>): Promise<void> {
  for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}
