import type { IndexRun, RequestId, Store, StoreReport, TaskResult } from "@sheepdog/contracts";
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
 * million results never sit in memory twice. With `live` (the results this process saw stored,
 * decoded already), only the tasks it did not see are read. Reads only.
 */
export async function collectResults(
  store: Store,
  request: RequestId,
  tasks: number,
  live?: LiveResults,
): Promise<DecodedResults> {
  const seen = live?.stop();
  if (!store.getResultRange) return decodeResults(await store.getResults(request));
  const decoded: DecodedResults = {
    values: seen ?? new Array(tasks).fill(null),
    undecodable: new Map(),
  };
  for (const run of live?.unseenRuns() ?? [{ first: 0, count: tasks }]) {
    const end = run.first + run.count;
    for (let start = run.first; start < end; start += resultSlice) {
      const count = Math.min(resultSlice, end - start);
      const slice = await store.getResultRange(request, start, count);
      for (let i = 0; i < slice.length; i++) decodeInto(decoded, start + i, slice[i] ?? null);
    }
  }
  return decoded;
}

/**
 * The results of one request decoded as this process's store writes them (its server's posts,
 * the spool's and the output's recovered reports), so that a map's end reads back only the
 * tasks it did not see: those another process stored, and results larger than `inlineBytes`,
 * whose decoding could hold the event loop while the workers post (the end decodes those).
 * Without the store's `watchReports` it sees none, and the end reads every task.
 */
export class LiveResults {
  readonly #values: unknown[];
  /** 1 where `#values` holds the task's stored result. */
  readonly #seen: Uint8Array;
  readonly #inlineBytes: number;
  readonly #unwatch: () => void;

  constructor(store: Store, request: RequestId, tasks: number, inlineBytes: number) {
    this.#values = new Array(tasks).fill(null);
    this.#seen = new Uint8Array(tasks);
    this.#inlineBytes = inlineBytes;
    this.#unwatch =
      store.watchReports?.((id, reports) => {
        if (id === request) this.#take(reports);
      }) ?? (() => {});
  }

  #take(reports: readonly StoreReport[]): void {
    for (const report of reports) {
      if (report.kind !== "result" || report.value.byteLength > this.#inlineBytes) continue;
      if (report.index >= this.#seen.length) continue;
      try {
        this.#values[report.index] = decode(report.value);
        this.#seen[report.index] = 1;
      } catch {
        // Left unseen: the end reads it back and keeps why it does not decode.
      }
    }
  }

  /** Stops watching; returns the values taken in so far (`null` where none was). */
  stop(): unknown[] {
    this.#unwatch();
    return this.#values;
  }

  /** The runs of tasks whose result was not seen, in order. */
  unseenRuns(): IndexRun[] {
    const runs: IndexRun[] = [];
    const seen = this.#seen;
    for (let first = seen.indexOf(0); first !== -1; ) {
      const next = seen.indexOf(1, first);
      const end = next === -1 ? seen.length : next;
      runs.push({ first, count: end - first });
      first = next === -1 ? -1 : seen.indexOf(0, next);
    }
    return runs;
  }
}
