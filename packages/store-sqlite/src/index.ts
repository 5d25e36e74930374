export type { SqliteDatabase, SqliteStatement } from "./sqlite-database.js";
export type { SqliteStore, SqliteStoreOptions } from "./sqlite-store.js";
export { sqliteStore } from "./sqlite-store.js";
