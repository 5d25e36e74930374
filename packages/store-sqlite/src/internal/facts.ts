import type { RequestId, TaskFactsEntry, TaskLog } from "@sheepdog/contracts";
import type { SqliteDatabase, SqliteStatement } from "../sqlite-database.js";
import type { Connection } from "./connection.js";
import { cells, rawRows, yieldToEventLoop } from "./rows.js";

/** Runs `work` on the connection when the store's lock is free (the store's `read`). */
export type Reader = <T>(work: (c: Connection) => T) => Promise<T>;

/** How many tasks getTaskFacts reads per statement. */
const FACTS_PER_READ = 10_000;

/** The statements that read the facts and logs of reports (see schema.ts). */
export interface FactsStatements {
  /** The reports of arg rows `[from, to)`, their kind and facts. */
  factsIn: SqliteStatement;
  /** The arg rows in `[from, to)` that have a log. */
  loggedIn: SqliteStatement;
  /** The logs of arg rows `[from, to)`, in order. */
  logsIn: SqliteStatement;
}

/** Prepares the statements of getTaskFacts and getLogs, once per connection. */
export function prepareFacts(db: SqliteDatabase): FactsStatements {
  return {
    factsIn: rawRows(
      db.prepare(
        `SELECT arg_id, result IS NOT NULL, provisional, started_at, ended_at, host,
                peak_memory_bytes, attempt
         FROM reports WHERE arg_id >= ? AND arg_id < ?`,
      ),
    ),
    // A second range scan, not a join: looking each report up in `logs` cost more.
    loggedIn: rawRows(db.prepare("SELECT arg_id FROM logs WHERE arg_id >= ? AND arg_id < ?")),
    logsIn: rawRows(
      db.prepare("SELECT arg_id, log FROM logs WHERE arg_id >= ? AND arg_id < ? ORDER BY arg_id"),
    ),
  };
}

/** The range `start .. start + count - 1` (by default the rest of the request) as arg rows. */
function rowsOf(
  c: Connection,
  id: RequestId,
  start = 0,
  count?: number,
): { from: number; to: number; firstArg: number } {
  const size = count ?? c.shapes.of(id).tasks - start;
  const { firstArg } = c.shapes.range(id, start, size);
  return { from: firstArg + start, to: firstArg + start + size, firstArg };
}

/** A row of `factsIn` as getTaskFacts says it: no field for a fact that was not told. */
function entryOf(row: unknown[]): TaskFactsEntry {
  const [, isResult, provisional, startedAt, endedAt, host, peakMemoryBytes, attempt] = row as [
    number,
    number,
    number,
    ...(number | string | null)[],
  ];
  const entry: TaskFactsEntry = { kind: isResult === 1 ? "result" : "error", hasLog: false };
  if (provisional === 1) entry.provisional = true;
  if (startedAt !== null) entry.startedAt = startedAt as number;
  if (endedAt !== null) entry.endedAt = endedAt as number;
  if (host !== null) entry.host = host as string;
  if (peakMemoryBytes !== null) entry.peakMemoryBytes = peakMemoryBytes as number;
  if (attempt !== null) entry.attempt = attempt as number;
  return entry;
}

/**
 * The kind and facts of the reports of tasks `start .. start + count - 1` of request `id`,
 * `null` for a task without one. Each slice is a read of its own, and the event loop runs
 * between them without the store's lock, so that its writes (a server's reports) go on: a
 * report that comes meanwhile shows in a slice read after it, and every report shown is whole.
 */
export async function getTaskFacts(
  read: Reader,
  id: RequestId,
  start?: number,
  count?: number,
): Promise<(TaskFactsEntry | null)[]> {
  const { from, to } = await read((c) => rowsOf(c, id, start, count));
  const entries: (TaskFactsEntry | null)[] = new Array(to - from).fill(null);
  for (let slice = from; slice < to; slice += FACTS_PER_READ) {
    const end = Math.min(slice + FACTS_PER_READ, to);
    if (slice > from) await yieldToEventLoop();
    await read((c) => {
      for (const row of c.facts.factsIn.all([slice, end])) {
        const values = cells(row);
        entries[(values[0] as number) - from] = entryOf(values);
      }
      for (const row of c.facts.loggedIn.all([slice, end])) {
        const entry = entries[(cells(row)[0] as number) - from];
        if (entry) entry.hasLog = true;
      }
    });
  }
  return entries;
}

/** The logs of tasks `start .. start + count - 1` of request `id` that have one, in order. */
export function getLogs(c: Connection, id: RequestId, start?: number, count?: number): TaskLog[] {
  const { from, to, firstArg } = rowsOf(c, id, start, count);
  return c.facts.logsIn.all([from, to]).map((row) => {
    const [argId, log] = cells(row) as [number, string];
    return { index: argId - firstArg, log };
  });
}
