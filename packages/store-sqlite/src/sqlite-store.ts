import type {
  RequestId,
  Store,
  StoredReportsListener,
  StoreReport,
  TaskFactsEntry,
  TaskLog,
} from "@sheepdog/contracts";
import { newToken } from "@sheepdog/contracts";
import { invalidInput } from "./internal/errors.js";
import { getLogs, getTaskFacts } from "./internal/facts.js";
import { Lifecycle } from "./internal/lifecycle.js";
import type { Migration, SchemaSteps } from "./internal/migrations.js";
import { latestSchema, migrations } from "./internal/migrations.js";
import type { CheckedOptions } from "./internal/options.js";
import { checkOptions } from "./internal/options.js";
import { getArgs, unreported } from "./internal/read-args.js";
import { getErrors, getResultRange, getResults } from "./internal/read-results.js";
import { ReportQueue } from "./internal/report-queue.js";
import { checkReports, resetTasks } from "./internal/reports.js";
import { counts, getRequest, listRequests, metaJson, updateMeta } from "./internal/request-info.js";
import { checkNewRequest, createRequest } from "./internal/requests.js";
import { isBytes } from "./internal/rows.js";
import type { SqliteStoreOptions } from "./sqlite-store-options.js";

export type {
  SqliteStoreCommonOptions,
  SqliteStoreDatabaseOptions,
  SqliteStoreFileOptions,
  SqliteStoreOptions,
} from "./sqlite-store-options.js";

/** A {@link Store} on an SQLite database, with the optional methods, usable with `await using`. */
export interface SqliteStore extends Store, AsyncDisposable {
  putReports(id: RequestId, reports: readonly StoreReport[]): Promise<boolean[]>;
  resetTasks(id: RequestId, indices: readonly number[]): Promise<void>;
  getResultRange(id: RequestId, start: number, count: number): Promise<(Uint8Array | null)[]>;
  getTaskFacts(id: RequestId, start?: number, count?: number): Promise<(TaskFactsEntry | null)[]>;
  getLogs(id: RequestId, start?: number, count?: number): Promise<TaskLog[]>;
  watchReports(listener: StoredReportsListener): () => void;
  /** The database file (absolute), or a description of the database that was passed in. */
  readonly file: string;
}

/**
 * A {@link Store} on one SQLite file, through Kysely and better-sqlite3: WAL, a busy timeout
 * that waits without blocking the event loop, and a versioned schema. Several processes can
 * share one file. The file is opened on first use (and again after a failed first use);
 * nothing touches the disk, and better-sqlite3 is not loaded, before that. Options that name
 * neither `dbfile` nor `database`, or both, are `CONFIG_INVALID`.
 *
 * @example
 * ```ts
 * await using store = sqliteStore({ dbfile: "./sheepdog.sqlite" });
 * const { id, token } = await store.createRequest({ func, ns, args });
 * await store.putResult(id, 0, pickled);
 * console.log(await store.counts(id)); // { tasks: 3, results: 1, errors: 0 }
 * ```
 */
export function sqliteStore(options: SqliteStoreOptions): SqliteStore {
  return openStore(checkOptions(options), { migrations, script: latestSchema });
}

/** @internal For tests: a store whose schema is made by `list` instead of the real migrations. */
export function sqliteStoreWithMigrations(
  options: SqliteStoreOptions,
  list: readonly Migration[],
): SqliteStore {
  return openStore(checkOptions(options), { migrations: list });
}

/**
 * The store's methods: each checks its input, then runs on the connection (see lifecycle.ts)
 * one of the functions of internal/, which hold the SQL.
 */
function openStore(options: CheckedOptions, schema: SchemaSteps): SqliteStore {
  const lifecycle = new Lifecycle({ ...options, schema });
  const read = lifecycle.read.bind(lifecycle);
  const write = lifecycle.write.bind(lifecycle);
  const reports = new ReportQueue(lifecycle);
  const close = () => lifecycle.close(() => reports.flush());
  return {
    file: options.file,
    async createRequest(request) {
      const checked = checkNewRequest(request);
      const token = newToken();
      return write((c) => createRequest(c, checked, token));
    },
    getRequest: async (id) => read((c) => getRequest(c, id)),
    getArgs: async (id, start, count = 1) => read((c) => getArgs(c, id, start, count)),
    unreported: async (id, start, count) => read((c) => unreported(c, id, start, count)),
    async updateMeta(id, patch) {
      metaJson(patch, "meta patch");
      await write((c) => updateMeta(c, id, patch));
    },
    listRequests: async () => read((c) => listRequests(c)),
    async putResult(id, index, result) {
      if (!isBytes(result)) throw invalidInput("A result must be a Uint8Array.");
      const [stored] = await reports.add(id, [{ index, kind: "result", value: result }]);
      return stored as boolean;
    },
    async putError(id, index, error, options = {}) {
      if (typeof error !== "string") throw invalidInput("An error report must be a string.");
      const provisional = options?.provisional === true;
      const [stored] = await reports.add(id, [{ index, kind: "error", value: error, provisional }]);
      return stored as boolean;
    },
    putReports(id, batch) {
      try {
        checkReports(batch);
      } catch (error) {
        return Promise.reject(error);
      }
      return reports.add(id, batch);
    },
    async resetTasks(id, indices) {
      if (!Array.isArray(indices)) throw invalidInput("resetTasks needs an array of task indices.");
      await write((c) => resetTasks(c, id, indices));
    },
    counts: async (id) => read((c) => counts(c, id)),
    getResults: async (id) => read((c) => getResults(c, id)),
    getResultRange: async (id, start, count) => read((c) => getResultRange(c, id, start, count)),
    getErrors: async (id) => read((c) => getErrors(c, id)),
    getTaskFacts: async (id, start, count) => getTaskFacts(read, id, start, count),
    getLogs: async (id, start, count) => read((c) => getLogs(c, id, start, count)),
    watchReports: (listener) => reports.watchers.watch(listener),
    close,
    [Symbol.asyncDispose]: close,
  };
}
