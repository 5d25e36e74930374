export type { PostgresPool, PostgresPoolClient } from "./postgres-pool.js";
export type {
  PostgresStore,
  PostgresStoreCommonOptions,
  PostgresStoreOptions,
  PostgresStorePoolOptions,
  PostgresStoreUrlOptions,
} from "./postgres-store.js";
export { postgresStore } from "./postgres-store.js";
