import { didYouMean } from "@sheepdog/contracts";
import type { PostgresPool } from "../postgres-pool.js";
import type { PostgresStoreOptions } from "../postgres-store-options.js";
import { configInvalid } from "./errors.js";
import type { UrlTarget } from "./target.js";
import { parseUrl } from "./target.js";

/** Where the data is: a URL (the store makes and ends its pool) or a pool passed in. */
export type StoreTarget = { url: UrlTarget; maxConnections: number } | { pool: PostgresPool };

/** {@link PostgresStoreOptions}, checked. */
export interface CheckedOptions {
  target: StoreTarget;
  schema: string;
  reconnectTimeout: number;
  /** The database in messages: `postgres://user@host:port/database, schema s` (no password). */
  name: string;
}

const optionNames = [
  "connectionString",
  "pool",
  "schema",
  "reconnectTimeout",
  "maxConnections",
] as const;
/** Names people reach for, and the option they mean (for `didYouMean`). */
const optionHints: Record<string, string> = {
  url: "connectionString",
  uri: "connectionString",
  dbfile: "connectionString",
  database: "connectionString",
  databaseUrl: "connectionString",
  connection: "connectionString",
  connectionUrl: "connectionString",
  searchPath: "schema",
  search_path: "schema",
  timeout: "reconnectTimeout",
  max: "maxConnections",
  poolSize: "maxConnections",
};
const needsOne =
  'postgresStore needs connectionString (a postgres:// URL) or pool (a node-postgres Pool): postgresStore({ connectionString: "postgres://sheepdog@localhost/sheepdog" }).';
const schemaPattern = /^[a-z_][a-z0-9_]{0,62}$/;

/** A value's kind, for messages: "a number", "null", "an empty string". */
function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (value === "") return "an empty string";
  const type = typeof value;
  return `${/^[aeiou]/.test(type) ? "an" : "a"} ${type}`;
}

function checkKeys(options: object): void {
  for (const key of Object.keys(options)) {
    if ((optionNames as readonly string[]).includes(key)) continue;
    const hint = didYouMean(key, optionNames, optionHints);
    throw configInvalid(
      `Unknown option "${key}" for postgresStore. ${hint ? `Did you mean "${hint}"?` : `Known options: ${optionNames.join(", ")}.`}`,
    );
  }
}

function isPool(value: unknown): value is PostgresPool {
  const pool = value as PostgresPool | null;
  return (
    typeof pool === "object" &&
    pool !== null &&
    typeof pool.connect === "function" &&
    typeof pool.end === "function"
  );
}

/** A count of milliseconds or connections: a finite number, at least `min`. */
function checkNumber(name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value === "number" && Number.isFinite(value) && value >= min) return value;
  throw configInvalid(`${name} must be a number of at least ${min}, not ${String(value)}.`);
}

/** Where the data is: `{ connectionString }` or `{ pool }`, exactly one of them, well-formed. */
function checkTarget(options: PostgresStoreOptions, env: NodeJS.ProcessEnv): StoreTarget {
  const { connectionString, pool, maxConnections } = options as unknown as Record<string, unknown>;
  if (connectionString !== undefined && pool !== undefined) {
    throw configInvalid(
      "postgresStore got both connectionString and pool. Pass connectionString for a URL, or pool for a node-postgres Pool of yours, not both.",
    );
  }
  if (pool !== undefined) {
    if (!isPool(pool)) {
      throw configInvalid(
        `pool must be a node-postgres Pool (an object with connect() and end()), not ${kindOf(pool)}. For a URL, pass connectionString instead.`,
      );
    }
    if (maxConnections !== undefined) {
      throw configInvalid(
        "maxConnections sizes the pool the store makes from connectionString; a pool passed in keeps its own size (its max option).",
      );
    }
    return { pool };
  }
  if (connectionString === undefined) throw configInvalid(needsOne);
  if (typeof connectionString !== "string" || connectionString === "") {
    throw configInvalid(
      `connectionString must be a postgres:// URL (a non-empty string), not ${kindOf(connectionString)}.`,
    );
  }
  return {
    url: parseUrl(connectionString, env),
    maxConnections: checkNumber("maxConnections", maxConnections, 10, 1),
  };
}

/** Checks postgresStore's options: CONFIG_INVALID names what is wrong and what to pass. */
export function checkOptions(
  options: PostgresStoreOptions,
  env: NodeJS.ProcessEnv = process.env,
): CheckedOptions {
  if (typeof options !== "object" || options === null) throw configInvalid(needsOne);
  checkKeys(options);
  const target = checkTarget(options, env);
  const { schema = "sheepdog" } = options;
  if (typeof schema !== "string" || !schemaPattern.test(schema)) {
    throw configInvalid(
      `schema must be a lower-case SQL identifier (letters, digits and _, at most 63, not starting with a digit), such as "sheepdog", not ${typeof schema === "string" ? JSON.stringify(schema) : kindOf(schema)}.`,
    );
  }
  const reconnectTimeout = checkNumber("reconnectTimeout", options.reconnectTimeout, 30_000, 0);
  const where = "url" in target ? target.url.name : "the PostgreSQL pool passed in";
  return { target, schema, reconnectTimeout, name: `${where} (schema ${schema})` };
}
