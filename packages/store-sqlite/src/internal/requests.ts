import type { CreatedRequest, NewRequest, RequestId } from "@sheepdog/contracts";
import { hashToken, SheepdogError } from "@sheepdog/contracts";
import type { Connection } from "./connection.js";
import { invalidInput, source } from "./errors.js";
import { metaJson } from "./request-info.js";
import type { RequestStatements } from "./request-statements.js";
import { ARGS_PER_INSERT } from "./request-statements.js";
import { cells, firstRow, isBytes, yieldToEventLoop } from "./rows.js";

/** createRequest lets the event loop run after this many arguments. */
const ARGS_PER_YIELD = 50_000;

/** A {@link NewRequest} whose fields were checked, with its meta as JSON text. */
export interface CheckedRequest {
  func: Uint8Array;
  ns: Uint8Array;
  args: Iterable<Uint8Array>;
  meta: string;
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
 * Writes a request and its arguments. The caller holds a write transaction, so no one else
 * can take these args rows.
 */
export async function createRequest(
  c: Connection,
  request: CheckedRequest,
  token: string,
): Promise<CreatedRequest> {
  const { nextArg, insertRequest, setTasks } = c.requests;
  const firstArg = Number(cells(firstRow(nextArg, []))[0]);
  const { func, ns, meta } = request;
  const inserted = insertRequest.run([func, ns, firstArg, hashToken(token), Date.now(), meta]);
  const id = Number(inserted.lastInsertRowid);
  const tasks = await insertArgs(c.requests, id, firstArg, request.args);
  setTasks.run([tasks, id]);
  return { id, token };
}

/**
 * Inserts the arguments in statements of ARGS_PER_INSERT rows, and returns how many there
 * were. This is the one loop that runs a million times, so it uses prepared better-sqlite3
 * statements directly: building each statement through Kysely's query builder costs more
 * than running it.
 */
async function insertArgs(
  statements: RequestStatements,
  id: RequestId,
  firstArg: number,
  args: Iterable<Uint8Array>,
): Promise<number> {
  const batch: unknown[] = new Array(ARGS_PER_INSERT * 3);
  let filled = 0;
  let index = 0;
  const read = readerOf(args);
  for (let next = read(); !next.done; next = read(), index += 1) {
    const arg: unknown = next.value;
    if (!isBytes(arg)) throw invalidInput(`Argument ${index} must be a Uint8Array.`);
    batch[filled++] = firstArg + index;
    batch[filled++] = id;
    // A copy, as rows wait here for their batch: a generator may reuse its buffer.
    batch[filled++] = arg.slice();
    if (filled === batch.length) {
      statements.insertArgs.run(batch);
      filled = 0;
    }
    if ((index + 1) % ARGS_PER_YIELD === 0) await yieldToEventLoop();
  }
  for (let i = 0; i < filled; i += 3) {
    statements.insertArg.run([batch[i], batch[i + 1], batch[i + 2]]);
  }
  return index;
}

/** The caller's arguments one at a time; a failure of the caller's iterable is INVALID_INPUT. */
function readerOf(args: Iterable<Uint8Array>): () => IteratorResult<Uint8Array> {
  let iterator: Iterator<Uint8Array> | undefined;
  return () => {
    try {
      iterator ??= args[Symbol.iterator]();
      return iterator.next();
    } catch (error) {
      throw SheepdogError.from(error, "INVALID_INPUT", source, "Reading the request's args failed");
    }
  };
}
