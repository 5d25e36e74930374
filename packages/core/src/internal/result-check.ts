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

/**
 * Decodes the results of `rows` in order, `null` for a task without one. A stored result that
 * does not decode (one stored before it could be checked) is turned into an error for that
 * task in the store, so that `getErrors` shows why it is `null`.
 */
export async function decodeResults(
  store: Store,
  request: number,
  rows: readonly TaskResult[],
): Promise<unknown[]> {
  const values: unknown[] = [];
  const broken: { index: number; reason: string }[] = [];
  for (const row of rows) {
    if (row.result === null) {
      values.push(null);
      continue;
    }
    try {
      values.push(decode(row.result));
    } catch {
      values.push(null);
      broken.push({ index: row.index, reason: undecodableReason(row.result) ?? "" });
    }
  }
  if (broken.length > 0 && store.resetTasks) {
    await store.resetTasks(
      request,
      broken.map((b) => b.index),
    );
    for (const { index, reason } of broken) await store.putError(request, index, reason);
  }
  return values;
}
