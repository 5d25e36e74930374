import { resolve } from "node:path";
import type {
  CreatedRequest,
  NewRequest,
  RequestCounts,
  RequestId,
  RequestInfo,
  RequestMeta,
  RequestSummary,
  Store,
  StoreReport,
  TaskError,
  TaskResult,
} from "@sheepdog/contracts";
import { hashToken, newToken, SheepdogError } from "@sheepdog/contracts";
import type { Kysely, Selectable } from "kysely";
import { LOCK_SLICE_MS, retryBusy } from "./internal/busy.js";
import {
  closedError,
  invalidInput,
  requestNotFound,
  source,
  storeError,
  taskNotFound,
} from "./internal/errors.js";
import { loadKysely, openKysely } from "./internal/kysely.js";
import {
  APPLICATION_ID,
  type FileIdentity,
  judge,
  latestVersion,
  type Migration,
  migrate,
  migrations,
} from "./internal/migrations.js";
import { Mutex } from "./internal/mutex.js";
import { openFile } from "./internal/open-file.js";
import type { PackedStatements } from "./internal/packed.js";
import { inOrder, preparePacked, unpack } from "./internal/packed.js";
import type { Schema } from "./internal/schema.js";
import { SlabDecoder, smallAsHex } from "./internal/small-values.js";
import type { SqliteDatabase, SqliteStatement } from "./sqlite-database.js";

/** Options of {@link sqliteStore}. */
export interface SqliteStoreOptions {
  /**
   * The database: a file path (created if missing; `":memory:"` for a private in-memory
   * database), or an open better-sqlite3 `Database`. A database you pass stays yours:
   * `close()` leaves it open. Either way it must be empty or a Sheepdog database.
   */
  database: string | SqliteDatabase;
  /**
   * How long a call waits for another process's write to finish before it fails with
   * `STORE_IO`, in milliseconds. The wait is asynchronous: the event loop keeps running.
   * @default 30_000
   */
  busyTimeout?: number;
}

/** A {@link Store} on an SQLite database, with the optional methods, usable with `await using`. */
export interface SqliteStore extends Store, AsyncDisposable {
  putReports(id: RequestId, reports: readonly StoreReport[]): Promise<boolean[]>;
  resetTasks(id: RequestId, indices: readonly number[]): Promise<void>;
  getResultRange(id: RequestId, start: number, count: number): Promise<(Uint8Array | null)[]>;
  /** The database file (absolute), or a description of the database that was passed in. */
  readonly file: string;
}

const optionNames = ["database", "busyTimeout"] as const;
const optionHints: Record<string, string> = {
  dbfile: "database",
  path: "database",
  file: "database",
  filename: "database",
  db: "database",
  timeout: "busyTimeout",
  busy_timeout: "busyTimeout",
};

/**
 * A {@link Store} on one SQLite file, through Kysely and better-sqlite3: WAL, a busy timeout
 * that waits without blocking the event loop, and a versioned schema. Several processes can
 * share one file. The file is opened on first use (and again after a failed first use);
 * nothing touches the disk before that.
 *
 * @example
 * ```ts
 * await using store = sqliteStore({ database: "./sheepdog.sqlite" });
 * const { id, token } = await store.createRequest({ func, ns, args });
 * await store.putResult(id, 0, pickled);
 * console.log(await store.counts(id)); // { tasks: 3, results: 1, errors: 0 }
 * ```
 */
export function sqliteStore(options: SqliteStoreOptions): SqliteStore {
  return new SqliteStoreImpl(checkOptions(options));
}

function checkOptions(options: SqliteStoreOptions): Required<SqliteStoreOptions> {
  if (typeof options !== "object" || options === null) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      'sqliteStore needs options: sqliteStore({ database: "./sheepdog.sqlite" }).',
    );
  }
  for (const key of Object.keys(options)) {
    if ((optionNames as readonly string[]).includes(key)) continue;
    const hint = optionHints[key] ?? optionHints[key.toLowerCase()];
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `Unknown option "${key}" for sqliteStore. ${hint ? `Did you mean "${hint}"?` : `Known options: ${optionNames.join(", ")}.`}`,
    );
  }
  const { database, busyTimeout = 30_000 } = options;
  const isDatabase =
    typeof database === "object" &&
    database !== null &&
    typeof (database as SqliteDatabase).prepare === "function";
  if (!(typeof database === "string" && database !== "") && !isDatabase) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      "The database option must be a file path or an open better-sqlite3 Database.",
    );
  }
  if (typeof busyTimeout !== "number" || !(busyTimeout >= 0) || busyTimeout === Infinity) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `busyTimeout must be a number of milliseconds (0 or more), not ${String(busyTimeout)}.`,
    );
  }
  return { database, busyTimeout };
}

/** The open database and the statements prepared on it. */
interface Connection {
  db: SqliteDatabase;
  /** Kysely on this database, made on first use (see kysely.ts). */
  kysely: Promise<Kysely<Schema>> | undefined;
  owned: boolean;
  closed: boolean;
  begin: SqliteStatement;
  commit: SqliteStatement;
  requestShape: SqliteStatement;
  insertRequest: SqliteStatement;
  setTasks: SqliteStatement;
  requestRow: SqliteStatement;
  requestCounts: SqliteStatement;
  requestMeta: SqliteStatement;
  setMeta: SqliteStatement;
  nextArg: SqliteStatement;
  insertArg: SqliteStatement;
  insertArgs: SqliteStatement;
  insertReport: SqliteStatement;
  addCounts: SqliteStatement;
  getArgs: SqliteStatement;
  reportedIn: SqliteStatement;
  beginRead: SqliteStatement;
  resultsIn: SqliteStatement;
  /** Reads of many rows as a few strings, where this SQLite can (see packed.ts). */
  packed: PackedStatements | undefined;
}

/** How many argument rows one INSERT statement carries in createRequest. */
const ARGS_PER_INSERT = 200;
/** How many tasks getResults reads per statement. */
const RESULTS_PER_READ = 10_000;
/** getArgs reads this many arguments or more as packed slices (see packed.ts), ... */
const PACKED_FROM = 32;
/** ... of at most this many rows each. */
const ARGS_PER_SLICE = 4096;
/** createRequest lets the event loop run after this many arguments. */
const ARGS_PER_YIELD = 50_000;

/** Where a request's tasks are: args rows `firstArg .. firstArg + tasks - 1`. */
interface Shape {
  tasks: number;
  firstArg: number;
}

interface PendingReports {
  id: RequestId;
  reports: readonly StoreReport[];
  resolve(stored: boolean[]): void;
  reject(error: unknown): void;
}

/** A large value (see packed.ts) by row id: the one cell of its one row. */
function large(statement: SqliteStatement, row: number): Uint8Array {
  return cells(statement.all([row])[0])[0] as Uint8Array;
}

/** The first row of a query, or undefined. */
function firstRow(statement: SqliteStatement, parameters: unknown[]): unknown {
  return statement.all(parameters)[0];
}

/**
 * Ends a failed transaction. SQLite has already rolled back after some errors (a full disk),
 * and then ROLLBACK itself fails: the first error is the one to report.
 */
function rollback(db: SqliteDatabase): void {
  try {
    db.prepare("ROLLBACK").run([]);
  } catch {
    // No transaction was active any more.
  }
}

function pragma(db: SqliteDatabase, text: string): unknown[] {
  const statement = db.prepare(`PRAGMA ${text}`);
  if (statement.reader) return statement.all([]);
  statement.run([]);
  return [];
}

function pragmaValue(db: SqliteDatabase, name: string): unknown {
  const row = pragma(db, name)[0];
  return row === undefined ? undefined : Object.values(row as object)[0];
}

function readIdentity(db: SqliteDatabase): FileIdentity {
  const objects = db.prepare("SELECT count(*) AS n FROM sqlite_schema").all([])[0] as { n: number };
  return {
    applicationId: Number(pragmaValue(db, "application_id")),
    version: Number(pragmaValue(db, "user_version")),
    objects: objects.n,
  };
}

function rawRows(statement: SqliteStatement): SqliteStatement {
  statement.raw?.(true);
  return statement;
}

/** Row cells, whether the statement returns arrays (raw) or objects. */
function cells(row: unknown): unknown[] {
  return Array.isArray(row) ? row : Object.values(row as object);
}

function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array;
}

function isRequestId(id: unknown): id is number {
  return Number.isSafeInteger(id) && (id as number) > 0;
}

function metaJson(meta: unknown, what: string): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(meta);
  } catch (error) {
    throw invalidInput(`The ${what} must be JSON-serialisable: ${(error as Error).message}.`);
  }
  if (json === undefined || typeof meta !== "object" || meta === null || Array.isArray(meta)) {
    throw invalidInput(`The ${what} must be a plain object of JSON values.`);
  }
  return json;
}

class SqliteStoreImpl implements SqliteStore {
  readonly file: string;
  readonly #options: Required<SqliteStoreOptions>;
  readonly #migrations: readonly Migration[];
  readonly #lock = new Mutex();
  #connecting: Promise<Connection> | undefined;
  #closed = false;
  /** A request's tasks and first args row never change, so they are kept after one look. */
  readonly #shapes = new Map<RequestId, Shape>();
  #pending: PendingReports[] = [];
  #flushScheduled = false;

  constructor(options: Required<SqliteStoreOptions>, list: readonly Migration[] = migrations) {
    this.#options = options;
    this.#migrations = list;
    const { database } = options;
    if (typeof database === "string") {
      this.file = database === ":memory:" ? "the in-memory database" : resolve(database);
    } else {
      this.file = typeof database.name === "string" ? database.name : "the database passed in";
    }
  }

  // ---- lifecycle ----------------------------------------------------------------------

  /** The open connection, opening it on first use; a failed open is retried on the next call. */
  #connect(): Promise<Connection> {
    if (!this.#connecting) {
      this.#connecting = this.#open().catch((error: unknown) => {
        this.#connecting = undefined;
        throw error;
      });
    }
    return this.#connecting;
  }

  async #open(): Promise<Connection> {
    const { database, busyTimeout } = this.#options;
    const owned = typeof database === "string";
    const db = owned ? await openFile(database === ":memory:" ? database : this.file) : database;
    try {
      return await this.#prepare(db, owned, busyTimeout);
    } catch (error) {
      if (owned) {
        try {
          db.close();
        } catch {
          // Already failing; the first error is the one to report.
        }
      }
      throw storeError(error, this.file);
    }
  }

  async #prepare(db: SqliteDatabase, owned: boolean, busyTimeout: number): Promise<Connection> {
    const latest = latestVersion(this.#migrations);
    const retry = <T>(attempt: () => T | Promise<T>) => retryBusy(attempt, busyTimeout, this.file);

    pragma(db, `busy_timeout = ${LOCK_SLICE_MS}`);
    // Look before touching: a file that is not a Sheepdog database is refused unchanged.
    const action = judge(await retry(() => readIdentity(db)), latest, this.file);
    await retry(() => pragma(db, "journal_mode = WAL"));
    pragma(db, "synchronous = NORMAL");
    // Checkpoint after 64 MiB of WAL rather than SQLite's 4 MiB: a checkpoint is where WAL mode
    // syncs to disk, and syncing 16 times less often tripled the rate of small writes here.
    pragma(db, "wal_autocheckpoint = 16384");
    pragma(db, "journal_size_limit = 67108864");

    let kysely: Promise<Kysely<Schema>> | undefined;
    if (action === "migrate") {
      await retry(() => db.prepare("BEGIN IMMEDIATE").run([]));
      try {
        // Another process may have migrated the file while this one waited for the lock.
        const identity = readIdentity(db);
        if (judge(identity, latest, this.file) === "migrate") {
          kysely = openKysely(db);
          const version = await migrate(await kysely, this.#migrations, identity.version);
          pragma(db, `application_id = ${APPLICATION_ID}`);
          pragma(db, `user_version = ${version}`);
        }
        db.prepare("COMMIT").run([]);
      } catch (error) {
        rollback(db);
        throw error;
      }
    }

    const argsRows = Array.from({ length: ARGS_PER_INSERT }, () => "(?, ?, ?)").join(", ");
    return {
      db,
      kysely,
      owned,
      closed: false,
      begin: db.prepare("BEGIN IMMEDIATE"),
      commit: db.prepare("COMMIT"),
      requestShape: db.prepare("SELECT tasks, first_arg FROM requests WHERE id = ?"),
      insertRequest: db.prepare(
        `INSERT INTO requests (func, ns, tasks, first_arg, token_hash, created_at, meta)
         VALUES (?, ?, 0, ?, ?, ?, ?)`,
      ),
      setTasks: db.prepare("UPDATE requests SET tasks = ? WHERE id = ?"),
      requestRow: db.prepare(
        "SELECT id, func, ns, tasks, token_hash, created_at, meta FROM requests WHERE id = ?",
      ),
      requestCounts: db.prepare("SELECT tasks, results, errors FROM requests WHERE id = ?"),
      requestMeta: db.prepare("SELECT meta FROM requests WHERE id = ?"),
      setMeta: db.prepare("UPDATE requests SET meta = ? WHERE id = ?"),
      nextArg: db.prepare("SELECT coalesce(max(id), 0) + 1 FROM args"),
      insertArg: db.prepare("INSERT INTO args (id, request_id, value) VALUES (?, ?, ?)"),
      insertArgs: db.prepare(`INSERT INTO args (id, request_id, value) VALUES ${argsRows}`),
      insertReport: db.prepare(
        "INSERT INTO reports (arg_id, result, error) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
      ),
      addCounts: db.prepare(
        "UPDATE requests SET results = results + ?, errors = errors + ? WHERE id = ?",
      ),
      getArgs: db.prepare("SELECT value FROM args WHERE id >= ? AND id < ? ORDER BY id"),
      reportedIn: rawRows(
        db.prepare("SELECT arg_id FROM reports WHERE arg_id >= ? AND arg_id < ?"),
      ),
      beginRead: db.prepare("BEGIN"),
      resultsIn: rawRows(
        db.prepare(
          `SELECT a.id, ${smallAsHex("a.value")}, ${smallAsHex("r.result")}
           FROM args a LEFT JOIN reports r ON r.arg_id = a.id WHERE a.id >= ? AND a.id < ?`,
        ),
      ),
      packed: preparePacked(db, rawRows),
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Calls made before close() are queued on the lock ahead of it, and finish first.
    const flushing = this.#flush();
    await this.#lock.run(async () => {
      const connection = await this.#connecting?.catch(() => undefined);
      if (!connection || connection.closed) return;
      connection.closed = true;
      // Kysely's destroy() closes the database; one that was passed in stays open for its owner.
      if (!connection.owned) return;
      const kysely = await connection.kysely?.catch(() => undefined);
      if (kysely) await kysely.destroy();
      else connection.db.close();
    });
    await flushing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Runs `work` alone on the connection (see {@link Mutex}); maps SQLite's errors to
   * SheepdogErrors that name the file.
   */
  async #run<T>(work: (c: Connection) => T | Promise<T>): Promise<T> {
    if (this.#closed) throw closedError();
    return this.#lock.run(async () => {
      const connection = await this.#connect();
      if (connection.closed) throw closedError();
      try {
        return await work(connection);
      } catch (error) {
        throw storeError(error, this.file);
      }
    });
  }

  /** A read: repeated while another connection holds a lock it needs. */
  #read<T>(work: (c: Connection) => T | Promise<T>): Promise<T> {
    return this.#run((c) => retryBusy(() => work(c), this.#options.busyTimeout, this.file));
  }

  /**
   * A write in one BEGIN IMMEDIATE transaction: it takes SQLite's write lock up front (waiting
   * for other processes without blocking the event loop), so that it cannot fail half-way
   * with SQLITE_BUSY as a deferred transaction that upgrades its lock can.
   */
  #write<T>(work: (c: Connection) => T | Promise<T>): Promise<T> {
    return this.#run(async (c) => {
      await retryBusy(() => c.begin.run([]), this.#options.busyTimeout, this.file);
      try {
        const result = await work(c);
        c.commit.run([]);
        return result;
      } catch (error) {
        rollback(c.db);
        throw error;
      }
    });
  }

  /** Kysely on the connection, made on first use; a failed import is tried again next time. */
  #kysely(c: Connection): Promise<Kysely<Schema>> {
    if (c.kysely === undefined) {
      const opening = openKysely(c.db);
      c.kysely = opening;
      opening.catch(() => {
        if (c.kysely === opening) c.kysely = undefined;
      });
    }
    return c.kysely;
  }

  /**
   * Where request `id`'s tasks are, or REQUEST_NOT_FOUND. Runs inside the lock. Requests are
   * never changed in shape nor deleted, so the answer is kept.
   */
  #shape(c: Connection, id: RequestId): Shape {
    const known = this.#shapes.get(id);
    if (known !== undefined) return known;
    const row = isRequestId(id) ? firstRow(c.requestShape, [id]) : undefined;
    if (row === undefined) throw requestNotFound(id);
    const [tasks, firstArg] = cells(row) as [number, number];
    const shape = { tasks, firstArg };
    this.#shapes.set(id, shape);
    return shape;
  }

  /** The shape of request `id`, after checking that tasks `start .. start + count - 1` exist. */
  #checkRange(c: Connection, id: RequestId, start: number, count: number): Shape {
    const shape = this.#shape(c, id);
    const inside = Number.isInteger(start) && Number.isInteger(count) && start >= 0 && count >= 0;
    if (!inside || start + count > shape.tasks) {
      throw taskNotFound(id, count === 1 ? start : `${start} to ${start + count - 1}`, shape.tasks);
    }
    return shape;
  }

  // ---- requests -------------------------------------------------------------------------

  async createRequest(request: NewRequest): Promise<CreatedRequest> {
    if (typeof request !== "object" || request === null) {
      throw invalidInput("createRequest needs { func, ns, args }.");
    }
    const { func, ns, args } = request;
    if (!isBytes(func)) throw invalidInput("The request's func must be a Uint8Array.");
    if (!isBytes(ns)) throw invalidInput("The request's ns must be a Uint8Array.");
    if (typeof (args as Iterable<Uint8Array>)?.[Symbol.iterator] !== "function") {
      throw invalidInput("The request's args must be an iterable of Uint8Array.");
    }
    const meta = metaJson(request.meta ?? {}, "request's meta");
    const token = newToken();
    return this.#write(async (c) => {
      // This transaction holds the write lock, so no one else can take these args rows.
      const firstArg = Number(cells(firstRow(c.nextArg, []))[0]);
      const inserted = c.insertRequest.run([
        func,
        ns,
        firstArg,
        hashToken(token),
        Date.now(),
        meta,
      ]);
      const id = Number(inserted.lastInsertRowid);
      const tasks = await this.#insertArgs(c, id, firstArg, args);
      c.setTasks.run([tasks, id]);
      return { id, token };
    });
  }

  /**
   * Inserts the arguments in statements of ARGS_PER_INSERT rows. This is the one loop that
   * runs a million times, so it uses prepared better-sqlite3 statements directly: building
   * each statement through Kysely's query builder costs more than running it.
   */
  async #insertArgs(
    c: Connection,
    id: RequestId,
    firstArg: number,
    args: Iterable<Uint8Array>,
  ): Promise<number> {
    const batch: unknown[] = new Array(ARGS_PER_INSERT * 3);
    let filled = 0;
    let index = 0;
    let iterator: Iterator<Uint8Array>;
    let next: IteratorResult<Uint8Array>;
    const fromCaller = (error: unknown) =>
      SheepdogError.from(error, "INVALID_INPUT", source, "Reading the request's args failed");
    try {
      iterator = args[Symbol.iterator]();
      next = iterator.next();
    } catch (error) {
      throw fromCaller(error);
    }
    for (; !next.done; index += 1) {
      const arg: unknown = next.value;
      if (!isBytes(arg)) throw invalidInput(`Argument ${index} must be a Uint8Array.`);
      batch[filled++] = firstArg + index;
      batch[filled++] = id;
      // A copy, as rows wait here for their batch: a generator may reuse its buffer.
      batch[filled++] = arg.slice();
      try {
        next = iterator.next();
      } catch (error) {
        throw fromCaller(error);
      }
      if (filled === batch.length) {
        c.insertArgs.run(batch);
        filled = 0;
      }
      if ((index + 1) % ARGS_PER_YIELD === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    for (let i = 0; i < filled; i += 3) c.insertArg.run([batch[i], batch[i + 1], batch[i + 2]]);
    return index;
  }

  async getRequest(id: RequestId): Promise<RequestInfo> {
    return this.#read(async (c) => {
      const row = isRequestId(id)
        ? (firstRow(c.requestRow, [id]) as Selectable<Schema["requests"]> | undefined)
        : undefined;
      if (!row) throw requestNotFound(id);
      return {
        id: row.id,
        func: row.func,
        ns: row.ns,
        tasks: row.tasks,
        tokenHash: row.token_hash,
        createdAt: row.created_at,
        meta: JSON.parse(row.meta) as RequestMeta,
      };
    });
  }

  async getArgs(id: RequestId, start: number, count = 1): Promise<Uint8Array[]> {
    return this.#read((c) => {
      const { firstArg } = this.#checkRange(c, id, start, count);
      const from = firstArg + start;
      const { packed } = c;
      if (packed === undefined || count < PACKED_FROM) {
        return c.getArgs.all([from, from + count]).map((row) => cells(row)[0] as Uint8Array);
      }
      const args: Uint8Array[] = [];
      for (let slice = from; slice < from + count; slice += ARGS_PER_SLICE) {
        const size = Math.min(ARGS_PER_SLICE, from + count - slice);
        const [ids, lengths, hex] = cells(firstRow(packed.args, [slice, slice + size]));
        const values = inOrder(ids, slice, size)
          ? unpack(lengths, hex, size, (i) => large(packed.largeArg, slice + i))
          : c.getArgs.all([slice, slice + size]).map((row) => cells(row)[0] as Uint8Array);
        for (const value of values) args.push(value as Uint8Array);
      }
      return args;
    });
  }

  async unreported(id: RequestId, start: number, count: number): Promise<number[]> {
    return this.#read((c) => {
      const { firstArg } = this.#checkRange(c, id, start, count);
      const from = firstArg + start;
      const reported = new Set(
        c.reportedIn.all([from, from + count]).map((row) => (cells(row)[0] as number) - firstArg),
      );
      const missing: number[] = [];
      for (let index = start; index < start + count; index++) {
        if (!reported.has(index)) missing.push(index);
      }
      return missing;
    });
  }

  async updateMeta(id: RequestId, patch: RequestMeta): Promise<void> {
    metaJson(patch, "meta patch");
    await this.#write(async (c) => {
      const row = isRequestId(id)
        ? (firstRow(c.requestMeta, [id]) as { meta: string } | undefined)
        : undefined;
      if (!row) throw requestNotFound(id);
      const meta = { ...(JSON.parse(row.meta) as RequestMeta), ...patch };
      c.setMeta.run([JSON.stringify(meta), id]);
    });
  }

  async listRequests(): Promise<RequestSummary[]> {
    return this.#read(async (c) => {
      const rows = await (await this.#kysely(c))
        .selectFrom("requests")
        .select(["id", "created_at", "meta", "tasks", "results", "errors"])
        .orderBy("id")
        .execute();
      return rows.map((row) => ({
        id: row.id,
        createdAt: row.created_at,
        meta: JSON.parse(row.meta) as RequestMeta,
        tasks: row.tasks,
        results: row.results,
        errors: row.errors,
      }));
    });
  }

  // ---- reports --------------------------------------------------------------------------

  async putResult(id: RequestId, index: number, result: Uint8Array): Promise<boolean> {
    if (!isBytes(result)) throw invalidInput("A result must be a Uint8Array.");
    const [stored] = await this.#report(id, [{ index, kind: "result", value: result }]);
    return stored as boolean;
  }

  async putError(id: RequestId, index: number, error: string): Promise<boolean> {
    if (typeof error !== "string") throw invalidInput("An error report must be a string.");
    const [stored] = await this.#report(id, [{ index, kind: "error", value: error }]);
    return stored as boolean;
  }

  async putReports(id: RequestId, reports: readonly StoreReport[]): Promise<boolean[]> {
    if (!Array.isArray(reports)) throw invalidInput("putReports needs an array of reports.");
    for (const report of reports) {
      const ok =
        typeof report === "object" &&
        report !== null &&
        ((report.kind === "result" && isBytes(report.value)) ||
          (report.kind === "error" && typeof report.value === "string"));
      if (!ok) {
        throw invalidInput(
          'Each report must be { index, kind: "result", value: Uint8Array } or { index, kind: "error", value: string }.',
        );
      }
    }
    return this.#report(id, reports);
  }

  /**
   * Queues reports for the next flush. Reports that arrive in the same turn of the event loop
   * (a server receiving many worker posts) are written in one transaction: a commit costs far
   * more than an insert, and a shared file allows one writer at a time.
   */
  async #report(id: RequestId, reports: readonly StoreReport[]): Promise<boolean[]> {
    if (this.#closed) throw closedError();
    return new Promise<boolean[]>((resolve, reject) => {
      this.#pending.push({ id, reports, resolve, reject });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => void this.#flush());
      }
    });
  }

  /** Writes every queued report in one transaction, and settles their promises. */
  async #flush(): Promise<void> {
    this.#flushScheduled = false;
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    let outcomes: (boolean[] | SheepdogError)[];
    try {
      // Not #write: #closed is already true while close() flushes the reports it accepted.
      outcomes = await this.#lock.run(async () => {
        const connection = await this.#connect();
        if (connection.closed) throw closedError();
        try {
          await retryBusy(() => connection.begin.run([]), this.#options.busyTimeout, this.file);
          try {
            const written = this.#writeReports(connection, batch);
            connection.commit.run([]);
            return written;
          } catch (error) {
            rollback(connection.db);
            throw error;
          }
        } catch (error) {
          throw storeError(error, this.file);
        }
      });
    } catch (error) {
      for (const pending of batch) pending.reject(error);
      return;
    }
    batch.forEach((pending, i) => {
      const outcome = outcomes[i] as boolean[] | SheepdogError;
      if (Array.isArray(outcome)) pending.resolve(outcome);
      else pending.reject(outcome);
    });
  }

  /**
   * Inserts each report unless its task already has one (the primary key decides, so two
   * processes racing on one task store one report), then adds to the counts once per request.
   * A group with an unknown request or task is refused whole, without failing the others.
   */
  #writeReports(c: Connection, batch: PendingReports[]): (boolean[] | SheepdogError)[] {
    const added = new Map<RequestId, { results: number; errors: number }>();
    const outcomes = batch.map(({ id, reports }) => {
      let shape: Shape;
      try {
        shape = this.#shape(c, id);
        for (const { index } of reports) {
          if (!Number.isInteger(index) || index < 0 || index >= shape.tasks) {
            throw taskNotFound(id, index, shape.tasks);
          }
        }
      } catch (error) {
        return error as SheepdogError;
      }
      let counts = added.get(id);
      if (!counts) {
        counts = { results: 0, errors: 0 };
        added.set(id, counts);
      }
      const stored: boolean[] = [];
      for (const report of reports) {
        const isResult = report.kind === "result";
        const { changes } = c.insertReport.run([
          shape.firstArg + report.index,
          isResult ? report.value : null,
          isResult ? null : report.value,
        ]);
        const fresh = Number(changes) === 1;
        if (fresh && isResult) counts.results += 1;
        if (fresh && !isResult) counts.errors += 1;
        stored.push(fresh);
      }
      return stored;
    });
    for (const [id, { results, errors }] of added) {
      if (results + errors > 0) c.addCounts.run([results, errors, id]);
    }
    return outcomes;
  }

  async resetTasks(id: RequestId, indices: readonly number[]): Promise<void> {
    if (!Array.isArray(indices)) throw invalidInput("resetTasks needs an array of task indices.");
    await this.#write(async (c) => {
      const { tasks, firstArg } = this.#shape(c, id);
      for (const index of indices) {
        if (!Number.isInteger(index) || index < 0 || index >= tasks) {
          throw taskNotFound(id, index, tasks);
        }
      }
      let results = 0;
      let errors = 0;
      const rows = [...new Set(indices)].map((index) => firstArg + index);
      const kysely = await this.#kysely(c);
      const { sql } = await loadKysely();
      for (let i = 0; i < rows.length; i += 500) {
        const removed = await kysely
          .deleteFrom("reports")
          .where("arg_id", "in", rows.slice(i, i + 500))
          .returning(sql<number>`result IS NOT NULL`.as("was_result"))
          .execute();
        for (const row of removed) {
          if (row.was_result) results += 1;
          else errors += 1;
        }
      }
      if (results + errors > 0) c.addCounts.run([-results, -errors, id]);
    });
  }

  async counts(id: RequestId): Promise<RequestCounts> {
    return this.#read(async (c) => {
      const row = isRequestId(id)
        ? (firstRow(c.requestCounts, [id]) as RequestCounts | undefined)
        : undefined;
      if (!row) throw requestNotFound(id);
      return { tasks: row.tasks, results: row.results, errors: row.errors };
    });
  }

  async getResults(id: RequestId): Promise<TaskResult[]> {
    return this.#read(async (c) => {
      const { tasks, firstArg } = this.#shape(c, id);
      const decoder = new SlabDecoder();
      const results: TaskResult[] = new Array(tasks);
      // Chunks read with all() cost less than one iterate() (which crosses into SQLite once
      // per row), and let the event loop run between them. One read transaction, so that every
      // chunk sees the same moment.
      const end = firstArg + tasks;
      c.beginRead.run([]);
      try {
        for (let from = firstArg; from < end; from += RESULTS_PER_READ) {
          const to = Math.min(from + RESULTS_PER_READ, end);
          const { packed } = c;
          const row = packed && cells(firstRow(packed.results, [from, to]));
          if (packed !== undefined && row !== undefined && inOrder(row[0], from, to - from)) {
            const [, argLengths, argHex, resultLengths, resultHex] = row;
            const args = unpack(argLengths, argHex, to - from, (i) =>
              large(packed.largeArg, from + i),
            );
            const values = unpack(resultLengths, resultHex, to - from, (i) =>
              large(packed.largeResult, from + i),
            );
            for (let i = 0; i < to - from; i++) {
              const index = from - firstArg + i;
              results[index] = { index, args: args[i] as Uint8Array, result: values[i] ?? null };
            }
            if (to < end) await new Promise((resolve) => setImmediate(resolve));
            continue;
          }
          for (const row of c.resultsIn.all([from, to])) {
            const [argId, args, result] = cells(row) as [number, unknown, unknown];
            const index = argId - firstArg;
            results[index] = {
              index,
              args: decoder.decode(args) as Uint8Array,
              result: decoder.decode(result),
            };
          }
          if (from + RESULTS_PER_READ < end) await new Promise((resolve) => setImmediate(resolve));
        }
      } finally {
        c.commit.run([]);
      }
      return results;
    });
  }

  async getResultRange(
    id: RequestId,
    start: number,
    count: number,
  ): Promise<(Uint8Array | null)[]> {
    return this.#read(async (c) => {
      const { firstArg } = this.#checkRange(c, id, start, count);
      const values: (Uint8Array | null)[] = [];
      const end = firstArg + start + count;
      // One read transaction, so that every slice sees the same moment.
      c.beginRead.run([]);
      try {
        for (let from = firstArg + start; from < end; from += RESULTS_PER_READ) {
          const to = Math.min(from + RESULTS_PER_READ, end);
          const { packed } = c;
          const row = packed && cells(firstRow(packed.resultsOnly, [from, to]));
          if (packed !== undefined && row !== undefined && inOrder(row[0], from, to - from)) {
            const slice = unpack(row[1], row[2], to - from, (i) =>
              large(packed.largeResult, from + i),
            );
            for (const value of slice) values.push(value);
          } else {
            const decoder = new SlabDecoder();
            const slice: (Uint8Array | null)[] = new Array(to - from).fill(null);
            for (const one of c.resultsIn.all([from, to])) {
              const [argId, , result] = cells(one) as [number, unknown, unknown];
              slice[argId - from] = decoder.decode(result);
            }
            for (const value of slice) values.push(value);
          }
        }
      } finally {
        c.commit.run([]);
      }
      return values;
    });
  }

  async getErrors(id: RequestId): Promise<TaskError[]> {
    return this.#read(async (c) => {
      const { tasks, firstArg } = this.#shape(c, id);
      const rows = await (await this.#kysely(c))
        .selectFrom("reports as r")
        .innerJoin("args as a", "a.id", "r.arg_id")
        .select(["r.arg_id", "a.value", "r.error"])
        .where("r.arg_id", ">=", firstArg)
        .where("r.arg_id", "<", firstArg + tasks)
        .where("r.error", "is not", null)
        .orderBy("r.arg_id")
        .execute();
      return rows.map((row) => ({
        index: row.arg_id - firstArg,
        args: row.value,
        error: row.error as string,
      }));
    });
  }
}

/** @internal For tests: a store whose schema is made by `list` instead of the real migrations. */
export function sqliteStoreWithMigrations(
  options: SqliteStoreOptions,
  list: readonly Migration[],
): SqliteStore {
  return new SqliteStoreImpl(checkOptions(options), list);
}
