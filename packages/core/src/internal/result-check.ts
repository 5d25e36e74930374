import type { RequestId, Store, TaskResult } from "@sheepdog/contracts";
import { decode } from "@sheepdog/serialise";

/**
 * Why a result's pickle cannot be decoded here, or `undefined` when it decodes. Decoding never
 * runs code; a result that fails it (a garbled pickle, or one using what this codec does not
 * read, such as copyreg extension codes) could never reach the caller as a value. The server
 * and `recover` store such a result as its task's error.
 */
export function undecodableReason(bytes: Uint8Array): string | undefined {
  try {
    decode(bytes);
    return undefined;
  } catch (error) {
    return undecodableMessage(error instanceof Error ? error.message : String(error));
  }
}

/** The error kept for a result that does not decode, given the decoder's message. */
export function undecodableMessage(detail: string): string {
  return `The task returned a result that Sheepdog cannot decode, so it is kept as this error instead: ${detail}`;
}

/**
 * The error kept for a result that Sheepdog could not check, and so will not hand to the
 * caller: `why` says what stopped the check ("decoding it took longer than 30 s").
 */
export function uncheckedMessage(why: string): string {
  return `The task returned a result that Sheepdog could not check (${why}), so it is kept as this error instead. Return a smaller or simpler value, or save it to a file and return its path.`;
}

/** Decoded results of a request, with the reason of each that would not decode. */
export interface DecodedResults {
  /** By task index; `null` where a task has no (decodable) result. */
  values: unknown[];
  /** Results that are stored but do not decode (written by something other than the server). */
  undecodable: Map<number, string>;
}

function decodeInto(decoded: DecodedResults, index: number, result: Uint8Array | null): void {
  if (result === null) return;
  try {
    decoded.values[index] = decode(result);
  } catch {
    decoded.undecodable.set(index, undecodableReason(result) ?? "");
  }
}

/** The results of `rows` (from `getResults`), decoded, in their order. Reads only. */
export function decodeResults(rows: readonly TaskResult[]): DecodedResults {
  const decoded: DecodedResults = {
    values: new Array(rows.length).fill(null),
    undecodable: new Map(),
  };
  for (const row of rows) decodeInto(decoded, row.index, row.result);
  return decoded;
}

/**
 * Results read at once. A slice's views into the store's rows stay alive while it is decoded;
 * at 50,000 a slice, they outlived the young-generation collections its decoding set off and
 * were promoted (about 80 MB for a million results).
 */
const resultSlice = 4096;

/**
 * A request's results in task order, read a slice at a time when the store can, so that a
 * million results never sit in memory twice. Reads only.
 */
export async function collectResults(
  store: Store,
  request: RequestId,
  tasks: number,
): Promise<DecodedResults> {
  if (!store.getResultRange) return decodeResults(await store.getResults(request));
  const decoded: DecodedResults = { values: new Array(tasks).fill(null), undecodable: new Map() };
  for (let start = 0; start < tasks; start += resultSlice) {
    const slice = await store.getResultRange(request, start, Math.min(resultSlice, tasks - start));
    for (let i = 0; i < slice.length; i++) decodeInto(decoded, start + i, slice[i] ?? null);
  }
  return decoded;
}
