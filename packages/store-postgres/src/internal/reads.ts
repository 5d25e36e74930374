import type { RequestId, TaskError, TaskResult } from "@sheepdog/contracts";
import type { Opened } from "./database.js";
import type { Db } from "./kysely.js";
import { query } from "./kysely.js";
import type { Statements } from "./statements.js";
import { unframe } from "./values.js";

/** getArgs reads this many arguments or more packed (see statements.ts), ... */
const PACKED_FROM = 32;
/** ... and getResults, getResultRange and a packed getArgs read this many tasks per statement. */
const ROWS_PER_READ = 10_000;

/** Runs the reads of `rows` rows in one snapshot when they take several statements. */
async function inSnapshot<T>(db: Db, rows: number, work: (tx: Db) => Promise<T>): Promise<T> {
  if (rows <= ROWS_PER_READ) return work(db);
  return db
    .transaction()
    .setIsolationLevel("repeatable read")
    .setAccessMode("read only")
    .execute(work);
}

/** One value (an argument or a result) of task `index`, read on its own: a large one. */
async function readLarge(
  db: Db,
  statement: string,
  id: RequestId,
  index: number,
): Promise<Uint8Array> {
  const [row] = await query<Record<string, Uint8Array>>(db, statement, [id, index]);
  return Object.values(row ?? {})[0] as Uint8Array;
}

/** The arguments of tasks `[from, to)`, packed, into `into` from `into[at]` on. */
async function readArgs(
  db: Db,
  sql: Statements,
  id: RequestId,
  from: number,
  to: number,
): Promise<Uint8Array[]> {
  const [row] = await query<{ args: Uint8Array | null }>(db, sql.packedArgs, [id, from, to]);
  const args: Uint8Array[] = new Array(to - from);
  const large: number[] = [];
  let count = 0;
  unframe(
    row?.args ?? null,
    (position, value) => {
      count += 1;
      if (value === undefined) large.push(position);
      else args[position] = value;
    },
    false,
  );
  if (count !== to - from) throw new Error(`a packed read returned ${count} of ${to - from} args`);
  for (const position of large) {
    args[position] = await readLarge(db, sql.largeArg, id, from + position);
  }
  return args;
}

/** The results of tasks `[from, to)`, packed: `null` for a task without one. */
async function readResults(
  db: Db,
  sql: Statements,
  id: RequestId,
  from: number,
  to: number,
): Promise<(Uint8Array | null)[]> {
  const [row] = await query<{ results: Uint8Array | null }>(db, sql.packedResults, [id, from, to]);
  const results: (Uint8Array | null)[] = new Array(to - from).fill(null);
  const large: number[] = [];
  unframe(
    row?.results ?? null,
    (_, value, index) => {
      if (index < from || index >= to) throw new Error("a packed read returned another task");
      if (value === undefined) large.push(index);
      else results[index - from] = value;
    },
    true,
  );
  for (const index of large) {
    results[index - from] = await readLarge(db, sql.largeResult, id, index);
  }
  return results;
}

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
  // Arguments never change once their request exists: the slices need no common snapshot, and
  // are read side by side on the pool's connections.
  const slices: Promise<Uint8Array[]>[] = [];
  for (let from = start; from < start + count; from += ROWS_PER_READ) {
    slices.push(readArgs(db, sql, id, from, Math.min(from + ROWS_PER_READ, start + count)));
  }
  return (await Promise.all(slices)).flat();
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
      const [args, values] = await Promise.all([
        readArgs(tx, sql, id, from, to),
        readResults(tx, sql, id, from, to),
      ]);
      for (let i = 0; i < to - from; i++) {
        results[from + i] = {
          index: from + i,
          args: args[i] as Uint8Array,
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
  return inSnapshot(db, count, async (tx) => {
    const values: (Uint8Array | null)[] = [];
    for (let from = start; from < start + count; from += ROWS_PER_READ) {
      const to = Math.min(from + ROWS_PER_READ, start + count);
      for (const value of await readResults(tx, sql, id, from, to)) values.push(value);
    }
    return values;
  });
}

/** The error reports of request `id`, in task order, with their arguments. */
export async function getErrors({ db, sql, shapes }: Opened, id: RequestId): Promise<TaskError[]> {
  await shapes.of(db, id);
  const rows = await query<{ idx: number; value: Uint8Array; error: string; provisional: boolean }>(
    db,
    sql.errors,
    [id],
  );
  return rows.map((row) => ({
    index: row.idx,
    args: row.value,
    error: row.error,
    ...(row.provisional && { provisional: true as const }),
  }));
}
