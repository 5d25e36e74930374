import type { RequestId, TaskError, TaskResult } from "@sheepdog/contracts";
import type { Connection } from "./connection.js";
import { kyselyOf } from "./connection.js";
import { inOrder, readLarge, unpack } from "./packed.js";
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
      const slice = { from, to, firstArg, results };
      if (!readPackedTasks(c.reads, slice)) readTasksRowByRow(c.reads, decoder, slice);
      if (to < end) await yieldToEventLoop();
    }
  });
  return results;
}

/** Args rows `[from, to)` of a request whose task 0 is row `firstArg`, read into `results`. */
interface TaskSlice {
  from: number;
  to: number;
  firstArg: number;
  results: TaskResult[];
}

/** Reads a slice packed; false (and nothing read) if it cannot be read so. */
function readPackedTasks(
  reads: ReadStatements,
  { from, to, firstArg, results }: TaskSlice,
): boolean {
  const { packed } = reads;
  if (packed === undefined) return false;
  const row = cells(firstRow(packed.results, [from, to]));
  if (!inOrder(row[0], from, to - from)) return false;
  const [, argLengths, argHex, resultLengths, resultHex] = row;
  const args = unpack(argLengths, argHex, to - from, (i) => readLarge(packed.largeArg, from + i));
  const values = unpack(resultLengths, resultHex, to - from, (i) =>
    readLarge(packed.largeResult, from + i),
  );
  for (let i = 0; i < to - from; i++) {
    const index = from - firstArg + i;
    results[index] = { index, args: args[i] as Uint8Array, result: values[i] ?? null };
  }
  return true;
}

/** Reads a slice one row at a time. */
function readTasksRowByRow(
  reads: ReadStatements,
  decoder: SlabDecoder,
  { from, to, firstArg, results }: TaskSlice,
): void {
  for (const row of reads.resultsIn.all([from, to])) {
    const [argId, args, result] = cells(row) as [number, unknown, unknown];
    const index = argId - firstArg;
    results[index] = {
      index,
      args: decoder.decode(args) as Uint8Array,
      result: decoder.decode(result),
    };
  }
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
      const slice = packedResults(c.reads, from, to) ?? resultsRowByRow(c.reads, decoder, from, to);
      for (const value of slice) values.push(value);
    }
  });
  return values;
}

/** The results of args rows `[from, to)`, packed; undefined if they cannot be read so. */
function packedResults(
  reads: ReadStatements,
  from: number,
  to: number,
): (Uint8Array | null)[] | undefined {
  const { packed } = reads;
  if (packed === undefined) return undefined;
  const row = cells(firstRow(packed.resultsOnly, [from, to]));
  if (!inOrder(row[0], from, to - from)) return undefined;
  return unpack(row[1], row[2], to - from, (i) => readLarge(packed.largeResult, from + i));
}

/** The results of args rows `[from, to)`, one row at a time. */
function resultsRowByRow(
  reads: ReadStatements,
  decoder: SlabDecoder,
  from: number,
  to: number,
): (Uint8Array | null)[] {
  const slice: (Uint8Array | null)[] = new Array(to - from).fill(null);
  for (const row of reads.resultsIn.all([from, to])) {
    const [argId, , result] = cells(row) as [number, unknown, unknown];
    slice[argId - from] = decoder.decode(result);
  }
  return slice;
}

/** The error reports of request `id`, in task order, with their arguments. */
export async function getErrors(c: Connection, id: RequestId): Promise<TaskError[]> {
  const { tasks, firstArg } = c.shapes.of(id);
  const rows = await (await kyselyOf(c))
    .selectFrom("reports as r")
    .innerJoin("args as a", "a.id", "r.arg_id")
    .select(["r.arg_id", "a.value", "r.error", "r.provisional"])
    .where("r.arg_id", ">=", firstArg)
    .where("r.arg_id", "<", firstArg + tasks)
    .where("r.error", "is not", null)
    .orderBy("r.arg_id")
    .execute();
  return rows.map((row) => ({
    index: row.arg_id - firstArg,
    args: row.value,
    error: row.error as string,
    ...(row.provisional === 1 && { provisional: true as const }),
  }));
}
