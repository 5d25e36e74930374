import type { RequestId, TaskError, TaskResult } from "@sheepdog/contracts";
import type { Opened } from "./database.js";
import type { Db } from "./kysely.js";
import { query } from "./kysely.js";
import type { Statements } from "./statements.js";
import { SMALL_VALUE_BYTES } from "./statements.js";
import { unpack } from "./values.js";

/** getArgs reads this many arguments or more packed (see statements.ts), ... */
const PACKED_FROM = 32;
/** ... and getResults, getResultRange and a packed getArgs read this many tasks per statement. */
const ROWS_PER_READ = 10_000;

/** The arguments of tasks `start .. start + count - 1` of request `id`. */
export async function getArgs(
  { db, sql, shapes }: Opened,
  id: RequestId,
  start: number,
  count: number,
): Promise<Uint8Array[]> {
  await shapes.range(db, id, start, count);
  if (count < PACKED_FROM) {
    const rows = await query<{ value: Uint8Array }>(db, sql.args, [id, start, start + count]);
    return rows.map((row) => row.value);
  }
  return inSnapshot(db, count, async (tx) => {
    const args: Uint8Array[] = [];
    for (let from = start; from < start + count; from += ROWS_PER_READ) {
      const to = Math.min(from + ROWS_PER_READ, start + count);
      const [row] = await query<{ lengths: string | null; bytes: Uint8Array | null }>(
        tx,
        sql.packedArgs,
        [id, from, to],
      );
      const large = (i: number) => readLarge(tx, sql.largeArg, id, from + i, "value");
      const values = await unpack(
        row?.lengths ?? null,
        row?.bytes ?? null,
        to - from,
        SMALL_VALUE_BYTES,
        large,
      );
      for (const value of values) args.push(value as Uint8Array);
    }
    return args;
  });
}

/** Runs the reads of `rows` rows in one snapshot when they take several statements. */
async function inSnapshot<T>(db: Db, rows: number, work: (tx: Db) => Promise<T>): Promise<T> {
  if (rows <= ROWS_PER_READ) return work(db);
  return db
    .transaction()
    .setIsolationLevel("repeatable read")
    .setAccessMode("read only")
    .execute(work);
}

async function readLarge(
  db: Db,
  statement: string,
  id: RequestId,
  index: number,
  column: "value" | "result",
): Promise<Uint8Array> {
  const [row] = await query<Record<string, Uint8Array>>(db, statement, [id, index]);
  return row?.[column] as Uint8Array;
}

/** The tasks among `start .. start + count - 1` of request `id` that have no report. */
export async function unreported(
  { db, sql, shapes }: Opened,
  id: RequestId,
  start: number,
  count: number,
): Promise<number[]> {
  await shapes.range(db, id, start, count);
  if (count === 0) return [];
  const [row] = await query<{ missing: number[] }>(db, sql.unreported, [id, start, start + count]);
  return row?.missing ?? [];
}

/** Every task of request `id` with its arguments and result (null: none yet, or an error). */
export async function getResults(
  { db, sql, shapes }: Opened,
  id: RequestId,
): Promise<TaskResult[]> {
  const tasks = await shapes.of(db, id);
  const results: TaskResult[] = new Array(tasks);
  await inSnapshot(db, tasks, async (tx) => {
    for (let from = 0; from < tasks; from += ROWS_PER_READ) {
      const to = Math.min(from + ROWS_PER_READ, tasks);
      const [args, values] = await readSlice(tx, sql, id, from, to, true);
      for (let i = 0; i < to - from; i++) {
        results[from + i] = {
          index: from + i,
          args: (args as (Uint8Array | null)[])[i] as Uint8Array,
          result: values[i] ?? null,
        };
      }
    }
  });
  return results;
}

/** The results of tasks `start .. start + count - 1` of request `id`, without their arguments. */
export async function getResultRange(
  { db, sql, shapes }: Opened,
  id: RequestId,
  start: number,
  count: number,
): Promise<(Uint8Array | null)[]> {
  await shapes.range(db, id, start, count);
  const values: (Uint8Array | null)[] = [];
  await inSnapshot(db, count, async (tx) => {
    for (let from = start; from < start + count; from += ROWS_PER_READ) {
      const to = Math.min(from + ROWS_PER_READ, start + count);
      const [, slice] = await readSlice(tx, sql, id, from, to, false);
      for (const value of slice) values.push(value);
    }
  });
  return values;
}

/** Tasks `[from, to)`: their arguments (with `withArgs`) and results, packed. */
async function readSlice(
  db: Db,
  sql: Statements,
  id: RequestId,
  from: number,
  to: number,
  withArgs: boolean,
): Promise<[(Uint8Array | null)[] | undefined, (Uint8Array | null)[]]> {
  const [row] = await query<{
    arg_lengths?: string | null;
    arg_bytes?: Uint8Array | null;
    result_lengths: string | null;
    result_bytes: Uint8Array | null;
  }>(db, withArgs ? sql.packedResults : sql.packedResultsOnly, [id, from, to]);
  const count = to - from;
  const args = withArgs
    ? await unpack(
        row?.arg_lengths ?? null,
        row?.arg_bytes ?? null,
        count,
        SMALL_VALUE_BYTES,
        (i) => readLarge(db, sql.largeArg, id, from + i, "value"),
      )
    : undefined;
  const results = await unpack(
    row?.result_lengths ?? null,
    row?.result_bytes ?? null,
    count,
    SMALL_VALUE_BYTES,
    (i) => readLarge(db, sql.largeResult, id, from + i, "result"),
  );
  return [args, results];
}

/** The error reports of request `id`, in task order, with their arguments. */
export async function getErrors({ db, sql, shapes }: Opened, id: RequestId): Promise<TaskError[]> {
  await shapes.of(db, id);
  const rows = await query<{ idx: number; value: Uint8Array; error: string }>(db, sql.errors, [id]);
  return rows.map((row) => ({ index: row.idx, args: row.value, error: row.error }));
}
