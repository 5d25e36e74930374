import type { CreatedRequest, NewRequest, RequestId } from "@sheepdog/contracts";
import { hashToken, SheepdogError } from "@sheepdog/contracts";
import type { PackedSlice } from "./arg-slices.js";
import { SlicePacker } from "./arg-slices.js";
import type { Connection } from "./connection.js";
import { invalidInput, source } from "./errors.js";
import { metaJson } from "./request-info.js";
import type { RequestStatements } from "./request-statements.js";
import { cells, firstRow, isBytes, yieldToEventLoop } from "./rows.js";

/** createRequest lets the event loop run after this many arguments. */
const ARGS_PER_YIELD = 50_000;

/** A {@link NewRequest} whose fields were checked, with its meta as JSON text. */
export interface CheckedRequest {
  func: Uint8Array;
  ns: Uint8Array;
  args: Iterable<Uint8Array>;
  meta: string;
  onCreating: ((created: CreatedRequest) => void) | undefined;
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
  const { onCreating } = request;
  if (onCreating !== undefined && typeof onCreating !== "function") {
    throw invalidInput("The request's onCreating must be a function.");
  }
  return { func, ns, args, meta: metaJson(request.meta ?? {}, "request's meta"), onCreating };
}

/**
 * Writes a request and its arguments. The caller holds a write transaction, so no one else
 * can take these arg rows.
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
  tellCreating(request, { id, token });
  const tasks = await insertArgs(c.requests, id, firstArg, request.args);
  setTasks.run([tasks, id]);
  return { id, token };
}

/** Tells the caller's `onCreating`; one that throws is the caller's fault, not the write's. */
function tellCreating(request: CheckedRequest, created: CreatedRequest): void {
  try {
    request.onCreating?.(created);
  } catch {
    // The request is stored all the same.
  }
}

/**
 * Inserts the arguments in slices (see `ArgSlicesTable` in schema.ts), and returns how many
 * there were. This is the one loop that runs a million times, so it uses a prepared
 * better-sqlite3 statement directly.
 */
async function insertArgs(
  statements: RequestStatements,
  id: RequestId,
  firstArg: number,
  args: Iterable<Uint8Array>,
): Promise<number> {
  const packer = new SlicePacker(firstArg);
  const insert = (slice: PackedSlice | undefined) => {
    if (slice === undefined) return;
    statements.insertSlice.run([slice.first, id, slice.count, slice.ends, slice.value]);
  };
  let index = 0;
  const read = readerOf(args);
  for (let next = read(); !next.done; next = read(), index += 1) {
    const arg: unknown = next.value;
    if (!isBytes(arg)) throw invalidInput(`Argument ${index} must be a Uint8Array.`);
    insert(packer.add(arg));
    if ((index + 1) % ARGS_PER_YIELD === 0) await yieldToEventLoop();
  }
  insert(packer.finish());
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
