import type { RequestId, TaskFacts, TaskFactsEntry, TaskLog } from "@sheepdog/contracts";
import type { Opened } from "./database.js";
import type { Db } from "./kysely.js";
import { query } from "./kysely.js";
import { offsetsOf } from "./values.js";

/** getTaskFacts reads this many tasks per statement. */
const FACTS_PER_READ = 10_000;

const utf8 = new TextEncoder();
const lenientUtf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * The facts of the reports of one writeReports statement, as its columns (see statements.ts),
 * one entry per report, `null` (or -1) for a fact not told. Made only when a report of the
 * statement has facts: a statement without any sends none.
 */
export interface FactColumns {
  startedAt: (number | null)[];
  endedAt: (number | null)[];
  host: (string | null)[];
  peakMemoryBytes: (number | null)[];
  attempt: (number | null)[];
  /** The log's length in UTF-8 bytes, or -1 for none. */
  logLengths: number[];
  /** The logs there are, in order, as UTF-8. */
  logs: Uint8Array[];
}

function noFacts(count: number): FactColumns {
  const nulls = () => new Array<null>(count).fill(null);
  return {
    startedAt: nulls(),
    endedAt: nulls(),
    host: nulls(),
    peakMemoryBytes: nulls(),
    attempt: nulls(),
    logLengths: new Array<number>(count).fill(-1),
    logs: [],
  };
}

/**
 * Adds a report's facts to the columns of `reports` reports before it, making them (with no
 * facts for those) on the first report that has some. Returns the columns, or `undefined` while
 * no report has any.
 */
export function addFacts(
  columns: FactColumns | undefined,
  reports: number,
  facts: TaskFacts | undefined,
): FactColumns | undefined {
  if (facts === undefined && columns === undefined) return undefined;
  const into = columns ?? noFacts(reports);
  into.startedAt.push(facts?.startedAt ?? null);
  into.endedAt.push(facts?.endedAt ?? null);
  into.host.push(facts?.host ?? null);
  into.peakMemoryBytes.push(facts?.peakMemoryBytes ?? null);
  into.attempt.push(facts?.attempt ?? null);
  if (facts?.log === undefined) {
    into.logLengths.push(-1);
  } else {
    const log = utf8.encode(facts.log);
    into.logLengths.push(log.byteLength);
    into.logs.push(log);
  }
  return into;
}

/**
 * Values laid end to end (`lengths`: each one's length, -1 where there is none) in the order
 * `order` gives their positions.
 */
export function packedInOrder(
  lengths: readonly number[],
  values: readonly Uint8Array[],
  order: readonly number[],
): Uint8Array[] {
  const byPosition = new Array<Uint8Array | undefined>(lengths.length);
  let next = 0;
  lengths.forEach((length, i) => {
    if (length >= 0) byPosition[i] = values[next++];
  });
  const ordered: Uint8Array[] = [];
  for (const i of order) {
    const value = byPosition[i];
    if (value !== undefined) ordered.push(value);
  }
  return ordered;
}

/** The columns with their reports in the order `order` gives their positions. */
export function factsInOrder(columns: FactColumns, order: readonly number[]): FactColumns {
  const pick = <T>(values: readonly T[]) => order.map((i) => values[i] as T);
  return {
    startedAt: pick(columns.startedAt),
    endedAt: pick(columns.endedAt),
    host: pick(columns.host),
    peakMemoryBytes: pick(columns.peakMemoryBytes),
    attempt: pick(columns.attempt),
    logLengths: pick(columns.logLengths),
    logs: packedInOrder(columns.logLengths, columns.logs, order),
  };
}

/** Parameters $9 to $16 of writeReports: all null when no report has facts. */
export function factParameters(columns: FactColumns | undefined): unknown[] {
  if (columns === undefined) return [null, null, null, null, null, null, null, null];
  const told = <T>(values: readonly (T | null)[]) =>
    values.some((v) => v !== null) ? values : null;
  const anyLog = columns.logs.length > 0;
  return [
    told(columns.startedAt),
    told(columns.endedAt),
    told(columns.host),
    told(columns.peakMemoryBytes),
    told(columns.attempt),
    anyLog ? Buffer.concat(columns.logs) : null,
    anyLog ? columns.logLengths : null,
    anyLog ? offsetsOf(columns.logLengths) : null,
  ];
}

/** The flags of a record of the `taskFacts` statement: what the report is, and which facts it has. */
const IS_RESULT = 1;
const PROVISIONAL = 2;
const HAS_LOG = 4;
const HAS_STARTED_AT = 8;
const HAS_ENDED_AT = 16;
const HAS_PEAK_MEMORY = 32;
const HAS_ATTEMPT = 64;
const HAS_HOST = 128;

/** The bytes of a record before its host: index, flags, three float8s, attempt, host length. */
const RECORD_BYTES = 4 + 2 + 8 + 8 + 8 + 4 + 4;

/**
 * Reads the records of the `taskFacts` statement (big-endian: the task's index, its flags, the
 * start, end and peak memory as float8, the attempt, the host's length and UTF-8 bytes) into
 * `entries`, whose first entry is task `from`. No field for a fact that was not told.
 */
function readFacts(packed: Uint8Array, from: number, entries: (TaskFactsEntry | null)[]): void {
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  let at = 0;
  while (at < packed.byteLength) {
    const hostBytes = at + RECORD_BYTES <= packed.byteLength ? view.getInt32(at + 34) : -1;
    if (hostBytes < 0 || at + RECORD_BYTES + hostBytes > packed.byteLength) {
      throw new Error("a packed read is damaged");
    }
    const flags = view.getInt16(at + 4);
    const entry: TaskFactsEntry = {
      kind: flags & IS_RESULT ? "result" : "error",
      hasLog: (flags & HAS_LOG) !== 0,
    };
    if (flags & PROVISIONAL) entry.provisional = true;
    if (flags & HAS_STARTED_AT) entry.startedAt = view.getFloat64(at + 6);
    if (flags & HAS_ENDED_AT) entry.endedAt = view.getFloat64(at + 14);
    if (flags & HAS_PEAK_MEMORY) entry.peakMemoryBytes = view.getFloat64(at + 22);
    if (flags & HAS_ATTEMPT) entry.attempt = view.getInt32(at + 30);
    if (flags & HAS_HOST) {
      entry.host = lenientUtf8.decode(
        packed.subarray(at + RECORD_BYTES, at + RECORD_BYTES + hostBytes),
      );
    }
    entries[view.getInt32(at) - from] = entry;
    at += RECORD_BYTES + hostBytes;
  }
}

/** The range `start .. start + count - 1` (by default the rest of the request), checked. */
async function rangeOf(
  { db, shapes }: Opened,
  id: RequestId,
  start = 0,
  count?: number,
): Promise<{ from: number; to: number }> {
  const size = count ?? (await shapes.of(db, id)) - start;
  await shapes.range(db, id, start, size);
  return { from: start, to: start + size };
}

/** Runs the reads of `rows` rows in one snapshot when they take several statements. */
async function inSnapshot<T>(db: Db, rows: number, work: (tx: Db) => Promise<T>): Promise<T> {
  if (rows <= FACTS_PER_READ) return work(db);
  return db
    .transaction()
    .setIsolationLevel("repeatable read")
    .setAccessMode("read only")
    .execute(work);
}

/**
 * The kind and facts of the reports of tasks `start .. start + count - 1` of request `id`,
 * `null` for a task without one.
 */
export async function getTaskFacts(
  opened: Opened,
  id: RequestId,
  start?: number,
  count?: number,
): Promise<(TaskFactsEntry | null)[]> {
  const { from, to } = await rangeOf(opened, id, start, count);
  const entries: (TaskFactsEntry | null)[] = new Array(to - from).fill(null);
  await inSnapshot(opened.db, to - from, async (tx) => {
    for (let slice = from; slice < to; slice += FACTS_PER_READ) {
      const end = Math.min(slice + FACTS_PER_READ, to);
      const [row] = await query<{ facts: Uint8Array | null }>(tx, opened.sql.taskFacts, [
        id,
        slice,
        end,
      ]);
      if (row?.facts) readFacts(row.facts, from, entries);
    }
  });
  return entries;
}

/** The logs of tasks `start .. start + count - 1` of request `id` that have one, in order. */
export async function getLogs(
  opened: Opened,
  id: RequestId,
  start?: number,
  count?: number,
): Promise<TaskLog[]> {
  const { from, to } = await rangeOf(opened, id, start, count);
  const rows = await query<{ idx: number; log: Uint8Array }>(opened.db, opened.sql.logs, [
    id,
    from,
    to,
  ]);
  return rows.map((row) => ({ index: row.idx, log: lenientUtf8.decode(row.log) }));
}
