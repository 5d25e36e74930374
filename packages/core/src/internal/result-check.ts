import type { Store, TaskResult } from "@sheepdog/contracts";
import { decode } from "@sheepdog/serialise";

/**
 * Why a result's pickle cannot be decoded here, or `undefined` when it decodes. Decoding never
 * runs code; a result that fails it (a garbled pickle, or one using what this codec does not
 * read, such as copyreg extension codes) could never reach the caller as a value.
 */
export function undecodableReason(bytes: Uint8Array): string | undefined {
  try {
    decode(bytes);
    return undefined;
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    return `The task returned a result that Sheepdog cannot decode, so it is kept as this error instead: ${detail}`;
  }
}

/** Decodes results as they are read; those that do not decode become their tasks' errors. */
class ResultDecoder {
  readonly values: unknown[];
  readonly #broken: { index: number; reason: string }[] = [];

  constructor(tasks: number) {
    this.values = new Array(tasks).fill(null);
  }

  take(index: number, result: Uint8Array | null): void {
    if (result === null) return;
    try {
      this.values[index] = decode(result);
    } catch {
      this.#broken.push({ index, reason: undecodableReason(result) ?? "" });
    }
  }

  /** Keeps each undecodable result's reason as its task's error, so `getErrors` shows it. */
  async finish(store: Store, request: number): Promise<unknown[]> {
    if (this.#broken.length > 0 && store.resetTasks) {
      await store.resetTasks(
        request,
        this.#broken.map((b) => b.index),
      );
      for (const { index, reason } of this.#broken) await store.putError(request, index, reason);
    }
    return this.values;
  }
}

/** The results of `rows` (from `getResults`), decoded, in their order. */
export function decodeResults(
  store: Store,
  request: number,
  rows: readonly TaskResult[],
): Promise<unknown[]> {
  const decoder = new ResultDecoder(rows.length);
  for (const row of rows) decoder.take(row.index, row.result);
  return decoder.finish(store, request);
}

/**
 * A request's results in task order, `null` where a task has none, read a slice at a time when
 * the store can, so that a million results never sit in memory twice.
 */
export async function collectResults(
  store: Store,
  request: number,
  tasks: number,
): Promise<unknown[]> {
  if (!store.getResultRange) {
    return decodeResults(store, request, await store.getResults(request));
  }
  const decoder = new ResultDecoder(tasks);
  for (let start = 0; start < tasks; start += resultSlice) {
    const slice = await store.getResultRange(request, start, Math.min(resultSlice, tasks - start));
    for (let i = 0; i < slice.length; i++) decoder.take(start + i, slice[i] ?? null);
  }
  return decoder.finish(store, request);
}

const resultSlice = 50_000;
