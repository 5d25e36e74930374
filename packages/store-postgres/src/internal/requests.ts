import type {
  NewRequest,
  RequestCounts,
  RequestId,
  RequestInfo,
  RequestMeta,
  RequestSummary,
} from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type { Opened } from "./database.js";
import { invalidInput, requestNotFound, source } from "./errors.js";
import type { Db } from "./kysely.js";
import { query } from "./kysely.js";
import { isRequestId } from "./shapes.js";
import type { Statements } from "./statements.js";
import { intArray, isBytes, offsetsOf } from "./values.js";

/** createRequest sends the arguments in statements of at most this many, ... */
const ARGS_PER_INSERT = 10_000;
/** ... and at most about this many bytes. */
const BYTES_PER_INSERT = 4 * 1024 * 1024;

/** A {@link NewRequest} whose fields were checked, with its meta as JSON text. */
export interface CheckedRequest {
  func: Uint8Array;
  ns: Uint8Array;
  args: Iterable<Uint8Array>;
  meta: string;
}

/** Meta as JSON text, or INVALID_INPUT when it is not a plain object of JSON values. */
export function metaJson(meta: unknown, what: string): string {
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

/** Checks a new request's fields (its arguments are checked as they are read). */
export function checkNewRequest(request: NewRequest): CheckedRequest {
  if (typeof request !== "object" || request === null) {
    throw invalidInput("createRequest needs { func, ns, args }.");
  }
  const { func, ns, args } = request;
  if (!isBytes(func)) throw invalidInput("The request's func must be a Uint8Array.");
  if (!isBytes(ns)) throw invalidInput("The request's ns must be a Uint8Array.");
  if (typeof (args as Iterable<Uint8Array>)?.[Symbol.iterator] !== "function") {
    throw invalidInput("The request's args must be an iterable of Uint8Array.");
  }
  return { func, ns, args, meta: metaJson(request.meta ?? {}, "request's meta") };
}

/**
 * Writes a request and its arguments in one transaction, and returns its id and task count.
 * `reader` hands out the caller's arguments (see {@link ArgsReader}).
 */
export async function createRequest(
  { db, sql }: Opened,
  request: CheckedRequest,
  tokenHash: Uint8Array,
  reader: ArgsReader,
): Promise<{ id: RequestId; tasks: number }> {
  return db.transaction().execute(async (trx) => {
    const { func, ns, meta } = request;
    const [row] = await query<{ id: number }>(trx, sql.insertRequest, [
      func,
      ns,
      tokenHash,
      Date.now(),
      meta,
    ]);
    const id = (row as { id: number }).id;
    const tasks = await insertArgs(trx, sql, id, reader);
    await query(trx, sql.setTasks, [tasks, id]);
    return { id, tasks };
  });
}

/** The id of the request whose token has this hash, if it was stored. */
export async function findByToken(
  { db, sql }: Opened,
  tokenHash: Uint8Array,
): Promise<RequestId | undefined> {
  const [row] = await query<{ id: number }>(db, sql.findByToken, [tokenHash]);
  return row?.id;
}

/**
 * Inserts the arguments in batches (see statements.ts, insertArgs), each copied into a buffer of
 * its own as it is read (a generator may reuse its buffers), and returns how many there were.
 * One batch is in flight while the next is read: the server inserts one while the caller's
 * generator (pickling, in core) makes the next.
 */
async function insertArgs(
  db: Db,
  sql: Statements,
  id: RequestId,
  reader: ArgsReader,
): Promise<number> {
  let batch = new ArgsBatch(BYTES_PER_INSERT);
  let inFlight: Promise<unknown> = Promise.resolve();
  let index = 0;
  const send = async () => {
    if (batch.count === 0) return;
    const parameters = [id, index - batch.count, ...batch.columns()];
    await inFlight;
    inFlight = query(db, sql.insertArgs, parameters);
    // Settled (and its failure thrown) by the next send, or at the end.
    inFlight.catch(() => {});
    batch = new ArgsBatch(BYTES_PER_INSERT);
  };
  for (let next = reader.next(); !next.done; next = reader.next()) {
    const arg: unknown = next.value;
    if (!isBytes(arg)) throw invalidInput(`Argument ${index} must be a Uint8Array.`);
    if (!batch.fits(arg)) {
      await send();
      if (!batch.fits(arg)) batch = new ArgsBatch(arg.byteLength);
    }
    batch.add(arg);
    index += 1;
    if (batch.count === ARGS_PER_INSERT) await send();
  }
  await send();
  await inFlight;
  return index;
}

/** Arguments copied end to end into one buffer (grown as needed, up to `limit`), with their lengths. */
class ArgsBatch {
  readonly #limit: number;
  #bytes: Buffer = Buffer.allocUnsafe(64 * 1024);
  #used = 0;
  readonly #lengths: number[] = [];

  constructor(limit: number) {
    this.#limit = limit;
  }

  get count(): number {
    return this.#lengths.length;
  }

  fits(arg: Uint8Array): boolean {
    return this.#used + arg.byteLength <= this.#limit;
  }

  add(arg: Uint8Array): void {
    const needed = this.#used + arg.byteLength;
    if (needed > this.#bytes.byteLength) {
      const grown = Buffer.allocUnsafe(
        Math.min(this.#limit, Math.max(needed, 2 * this.#bytes.byteLength)),
      );
      this.#bytes.copy(grown, 0, 0, this.#used);
      this.#bytes = grown;
    }
    this.#bytes.set(arg, this.#used);
    this.#used = needed;
    this.#lengths.push(arg.byteLength);
  }

  /** The statement's parameters after the request and first index: bytes, lengths, offsets. */
  columns(): [Buffer, string, string] {
    const lengths = this.#lengths;
    return [this.#bytes.subarray(0, this.#used), intArray(lengths), intArray(offsetsOf(lengths))];
  }
}

/** The caller's arguments one at a time; a failure of the caller's iterable is INVALID_INPUT. */
export interface ArgsReader {
  next(): IteratorResult<Uint8Array>;
  /** Whether any argument was read (then a second try could not read them again). */
  readonly started: boolean;
}

/** An {@link ArgsReader}; `again()` starts over where the args can be read twice (an array). */
export function argsReader(args: Iterable<Uint8Array>): ArgsReader & { again(): ArgsReader } {
  let iterator: Iterator<Uint8Array> | undefined;
  return {
    get started() {
      return iterator !== undefined && !Array.isArray(args);
    },
    next() {
      try {
        iterator ??= args[Symbol.iterator]();
        return iterator.next();
      } catch (error) {
        throw SheepdogError.from(
          error,
          "INVALID_INPUT",
          source,
          "Reading the request's args failed",
        );
      }
    },
    again() {
      if (Array.isArray(args)) iterator = undefined;
      return this;
    },
  };
}

/** The row of request `id`, or REQUEST_NOT_FOUND. */
async function findRequest<T>(db: Db, statement: string, id: RequestId): Promise<T> {
  const [row] = isRequestId(id) ? await query<T>(db, statement, [id]) : [];
  if (row === undefined) throw requestNotFound(id);
  return row;
}

interface RequestRow {
  id: number;
  func: Uint8Array;
  ns: Uint8Array;
  tasks: number;
  token_hash: Uint8Array;
  created_at: number;
  meta: string;
}

export async function getRequest({ db, sql }: Opened, id: RequestId): Promise<RequestInfo> {
  const row = await findRequest<RequestRow>(db, sql.requestRow, id);
  return {
    id: row.id,
    func: row.func,
    ns: row.ns,
    tasks: row.tasks,
    tokenHash: row.token_hash,
    createdAt: row.created_at,
    meta: JSON.parse(row.meta) as RequestMeta,
  };
}

export async function counts({ db, sql }: Opened, id: RequestId): Promise<RequestCounts> {
  const row = await findRequest<RequestCounts>(db, sql.requestCounts, id);
  return { tasks: row.tasks, results: row.results, errors: row.errors };
}

/** Merges `patch` into the meta of request `id`, its row locked meanwhile. */
export async function updateMeta(
  { db, sql }: Opened,
  id: RequestId,
  patch: RequestMeta,
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const row = await findRequest<{ meta: string }>(trx, sql.requestMetaForUpdate, id);
    const meta = { ...(JSON.parse(row.meta) as RequestMeta), ...patch };
    await query(trx, sql.setMeta, [JSON.stringify(meta), id]);
  });
}

export async function listRequests({ db, sql }: Opened): Promise<RequestSummary[]> {
  const rows = await query<RequestSummary & { created_at: number; meta: string }>(
    db,
    sql.listRequests,
    [],
  );
  return rows.map((row) => ({
    id: row.id,
    createdAt: row.created_at,
    meta: JSON.parse(row.meta) as RequestMeta,
    tasks: row.tasks,
    results: row.results,
    errors: row.errors,
  }));
}
