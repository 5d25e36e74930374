import type {
  RequestId,
  Store,
  StoredReportsListener,
  StoreReport,
  TaskFactsEntry,
  TaskLog,
} from "@sheepdog/contracts";
import { hashToken, newToken } from "@sheepdog/contracts";
import { Database } from "./internal/database.js";
import { invalidInput } from "./internal/errors.js";
import { getLogs, getTaskFacts } from "./internal/facts.js";
import type { Migration } from "./internal/migrations.js";
import { migrations } from "./internal/migrations.js";
import type { CheckedOptions } from "./internal/options.js";
import { checkOptions } from "./internal/options.js";
import { getArgs, getErrors, getResultRange, getResults, unreported } from "./internal/reads.js";
import { ReportQueue } from "./internal/report-queue.js";
import { checkReports, resetTasks } from "./internal/reports.js";
import {
  argsReader,
  checkNewRequest,
  counts,
  createRequest,
  findByToken,
  getRequest,
  listRequests,
  metaJson,
  updateMeta,
} from "./internal/requests.js";
import { isBytes } from "./internal/values.js";
import type { PostgresStoreOptions } from "./postgres-store-options.js";

export type {
  PostgresStoreCommonOptions,
  PostgresStoreOptions,
  PostgresStorePoolOptions,
  PostgresStoreUrlOptions,
} from "./postgres-store-options.js";

/** A {@link Store} on PostgreSQL, with the optional methods, usable with `await using`. */
export interface PostgresStore extends Store, AsyncDisposable {
  putReports(id: RequestId, reports: readonly StoreReport[]): Promise<boolean[]>;
  resetTasks(id: RequestId, indices: readonly number[]): Promise<void>;
  getResultRange(id: RequestId, start: number, count: number): Promise<(Uint8Array | null)[]>;
  getTaskFacts(id: RequestId, start?: number, count?: number): Promise<(TaskFactsEntry | null)[]>;
  getLogs(id: RequestId, start?: number, count?: number): Promise<TaskLog[]>;
  watchReports(listener: StoredReportsListener): () => void;
  /**
   * The database and schema, for messages: `postgres://user@host:5432/db (schema sheepdog)`,
   * never with the password.
   */
  readonly database: string;
  /** The schema that holds the store's tables. */
  readonly schema: string;
}

/**
 * A {@link Store} on PostgreSQL, through Kysely and node-postgres: its tables in one schema
 * (created on first use, versioned), shared by every process and person that opens the same
 * database and schema. Nothing connects, and node-postgres is not loaded, before the first call;
 * a call goes on trying while the database cannot be reached, up to `reconnectTimeout`. Options
 * that name neither `connectionString` nor `pool`, or both, are `CONFIG_INVALID`.
 *
 * @example
 * ```ts
 * // The password from the URL, PGPASSWORD or ~/.pgpass (never printed).
 * await using store = postgresStore({ connectionString: "postgres://alice@db.lab/sheepdog" });
 * const { id, token } = await store.createRequest({ func, ns, args });
 * await store.putResult(id, 0, pickled);
 * console.log(await store.counts(id)); // { tasks: 3, results: 1, errors: 0 }
 * ```
 */
export function postgresStore(options: PostgresStoreOptions): PostgresStore {
  return openStore(checkOptions(options), migrations);
}

/** @internal For tests: a store whose schema is made by `list` instead of the real migrations. */
export function postgresStoreWithMigrations(
  options: PostgresStoreOptions,
  list: readonly Migration[],
): PostgresStore {
  return openStore(checkOptions(options), list);
}

/** The store's methods: each checks its input, then runs one of the functions of internal/. */
function openStore(options: CheckedOptions, list: readonly Migration[]): PostgresStore {
  const database = new Database({ ...options, migrations: list });
  const run = database.run.bind(database);
  const reports = new ReportQueue(database);
  const close = () => database.close(() => reports.flush());
  return {
    database: options.name,
    schema: options.schema,
    async createRequest(request) {
      const checked = checkNewRequest(request);
      const token = newToken();
      const tokenHash = hashToken(token);
      const reader = argsReader(checked.args);
      let tried = false;
      const id = await run(
        async (opened) => {
          // A try whose connection was lost around COMMIT may have stored the request.
          const stored = tried ? await findByToken(opened, tokenHash) : undefined;
          if (stored !== undefined) return stored;
          tried = true;
          const created = await createRequest(opened, checked, tokenHash, reader.again());
          opened.shapes.remember(created.id, created.tasks);
          return created.id;
        },
        // Arguments from a generator cannot be read twice: once reading began, no second try.
        { canRetry: () => !reader.started },
      );
      return { id, token };
    },
    getRequest: async (id) => run((o) => getRequest(o, id)),
    getArgs: async (id, start, count = 1) => run((o) => getArgs(o, id, start, count)),
    unreported: async (id, start, count) => run((o) => unreported(o, id, start, count)),
    async updateMeta(id, patch) {
      metaJson(patch, "meta patch");
      await run((o) => updateMeta(o, id, patch));
    },
    listRequests: async () => run((o) => listRequests(o)),
    async putResult(id, index, result) {
      if (!isBytes(result)) throw invalidInput("A result must be a Uint8Array.");
      const [stored] = await reports.add(id, [{ index, kind: "result", value: result.slice() }]);
      return stored as boolean;
    },
    async putError(id, index, error, options = {}) {
      if (typeof error !== "string") throw invalidInput("An error report must be a string.");
      const provisional = options?.provisional === true;
      const [stored] = await reports.add(id, [{ index, kind: "error", value: error, provisional }]);
      return stored as boolean;
    },
    async putReports(id, batch) {
      checkReports(batch);
      return reports.add(id, batch.map(copyReport));
    },
    async resetTasks(id, indices) {
      if (!Array.isArray(indices)) throw invalidInput("resetTasks needs an array of task indices.");
      await run((o) => resetTasks(o, id, indices));
    },
    counts: async (id) => run((o) => counts(o, id)),
    getResults: async (id) => run((o) => getResults(o, id)),
    getResultRange: async (id, start, count) => run((o) => getResultRange(o, id, start, count)),
    getErrors: async (id) => run((o) => getErrors(o, id)),
    getTaskFacts: async (id, start, count) => run((o) => getTaskFacts(o, id, start, count)),
    getLogs: async (id, start, count) => run((o) => getLogs(o, id, start, count)),
    watchReports: (listener) => reports.watchers.watch(listener),
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** A report whose bytes are the store's own: it waits for the next flush, and the caller may reuse its buffer. */
function copyReport(report: StoreReport): StoreReport {
  return report.kind === "result" ? { ...report, value: report.value.slice() } : report;
}
