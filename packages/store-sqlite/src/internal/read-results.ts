import type { RequestId, TaskError, TaskResult } from "@sheepdog/contracts";
import type { Connection } from "./connection.js";
import { kyselyOf } from "./connection.js";
import { ascendingIds, readLarge, unpack } from "./packed.js";
import { ArgCursor, argsIn } from "./read-args.js";
import type { ReadStatements } from "./read-statements.js";
import { cells, firstRow, yieldToEventLoop } from "./rows.js";
import { SlabDecoder } from "./small-values.js";

/** How many tasks getResults and getResultRange read per statement. */
const RESULTS_PER_READ = 10_000;

/** Runs `work` in one read transaction, so that every statement in it sees the same moment. */
export async function inReadTransaction<T>(c: Connection, work: () => T | Promise<T>): Promise<T> {
  c.beginRead.run([]);
  try {
    return await work();
  } finally {
    c.commit.run([]);
  }
}

/**
 * Every task of request `id` with its arguments and result (null: none yet, or an error).
 * Slices read with all() cost less than one iterate() (which crosses into SQLite once per
 * row), and let the event loop run between them.
 */
export async function getResults(c: Connection, id: RequestId): Promise<TaskResult[]> {
  const { tasks, firstArg } = c.shapes.of(id);
  const results: TaskResult[] = new Array(tasks);
  const decoder = new SlabDecoder();
  const end = firstArg + tasks;
  await inReadTransaction(c, async () => {
    for (let from = firstArg; from < end; from += RESULTS_PER_READ) {
      const to = Math.min(from + RESULTS_PER_READ, end);
      const args = argsIn(c.reads, from, to);
      const values = resultsIn(c.reads, decoder, from, to);
      for (let i = 0; i < to - from; i++) {
        const index = from - firstArg + i;
        results[index] = { index, args: args[i] as Uint8Array, result: values[i] ?? null };
      }
      if (to < end) await yieldToEventLoop();
    }
  });
  return results;
}

/** The results of tasks `start .. start + count - 1` of request `id`, without their arguments. */
export async function getResultRange(
  c: Connection,
  id: RequestId,
  start: number,
  count: number,
): Promise<(Uint8Array | null)[]> {
  const { firstArg } = c.shapes.range(id, start, count);
  const values: (Uint8Array | null)[] = [];
  const decoder = new SlabDecoder();
  const end = firstArg + start + count;
  await inReadTransaction(c, () => {
    for (let from = firstArg + start; from < end; from += RESULTS_PER_READ) {
      const to = Math.min(from + RESULTS_PER_READ, end);
      for (const value of resultsIn(c.reads, decoder, from, to)) values.push(value);
    }
  });
  return values;
}

/** The results of arg rows `[from, to)`, null where there is none (no report, or an error). */
function resultsIn(
  reads: ReadStatements,
  decoder: SlabDecoder,
  from: number,
  to: number,
): (Uint8Array | null)[] {
  const slice: (Uint8Array | null)[] = new Array(to - from).fill(null);
  if (!readPackedResults(reads, from, to, slice)) {
    for (const row of reads.resultsIn.all([from, to])) {
      const [argId, result] = cells(row) as [number, unknown];
      slice[argId - from] = decoder.decode(result);
    }
  }
  return slice;
}

/** Reads the results of arg rows `[from, to)` packed into `slice`; false if it cannot. */
function readPackedResults(
  reads: ReadStatements,
  from: number,
  to: number,
  slice: (Uint8Array | null)[],
): boolean {
  const { packed } = reads;
  if (packed === undefined) return false;
  const [joinedIds, lengths, hex] = cells(firstRow(packed.results, [from, to]));
  const ids = ascendingIds(joinedIds, from, to);
  if (ids === undefined) return false;
  const values = unpack(lengths, hex, ids.length, (i) =>
    readLarge(packed.largeResult, ids[i] as number),
  );
  ids.forEach((row, i) => {
    slice[row - from] = values[i] ?? null;
  });
  return true;
}

/** The error reports of request `id`, in task order, with their arguments. */
export async function getErrors(c: Connection, id: RequestId): Promise<TaskError[]> {
  const { tasks, firstArg } = c.shapes.of(id);
  const rows = await (await kyselyOf(c))
    .selectFrom("reports")
    .select(["arg_id", "error", "provisional"])
    .where("arg_id", ">=", firstArg)
    .where("arg_id", "<", firstArg + tasks)
    .where("error", "is not", null)
    .orderBy("arg_id")
    .execute();
  // Arguments never change once stored: they need not be read in the same moment as the rows.
  const args = new ArgCursor(c.reads);
  return rows.map((row) => ({
    index: row.arg_id - firstArg,
    args: args.at(row.arg_id),
    error: row.error as string,
    ...(row.provisional === 1 && { provisional: true as const }),
  }));
}
