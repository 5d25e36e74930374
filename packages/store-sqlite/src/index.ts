export type { SqliteDatabase, SqliteStatement } from "./sqlite-database.js";
export type {
  SqliteStore,
  SqliteStoreCommonOptions,
  SqliteStoreDatabaseOptions,
  SqliteStoreFileOptions,
  SqliteStoreOptions,
} from "./sqlite-store.js";
export { sqliteStore } from "./sqlite-store.js";
