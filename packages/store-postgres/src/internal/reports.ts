import type { RequestId, SheepdogError, StoreReport } from "@sheepdog/contracts";
import type { Opened } from "./database.js";
import { invalidInput } from "./errors.js";
import { query } from "./kysely.js";
import { checkIndices } from "./shapes.js";
import { isBytes, offsetsOf } from "./values.js";

/** Checks that `reports` is an array of well-formed reports (their tasks are checked later). */
export function checkReports(reports: readonly StoreReport[]): void {
  if (!Array.isArray(reports)) throw invalidInput("putReports needs an array of reports.");
  for (const report of reports) {
    const ok =
      typeof report === "object" &&
      report !== null &&
      ((report.kind === "result" && isBytes(report.value)) ||
        (report.kind === "error" && typeof report.value === "string"));
    if (!ok) {
      throw invalidInput(
        'Each report must be { index, kind: "result", value: Uint8Array } or { index, kind: "error", value: string }.',
      );
    }
  }
}

/** One caller's reports for one request. */
export interface ReportGroup {
  id: RequestId;
  reports: readonly StoreReport[];
}

/** The reports of one statement (see statements.ts, writeReports). */
interface Columns {
  reports: { id: RequestId; report: StoreReport }[];
  bytes: number;
}

/** A statement carries at most this many reports, ... */
const REPORTS_PER_WRITE = 10_000;
/** ... and about this many bytes of results. */
const BYTES_PER_WRITE = 32 * 1024 * 1024;

const noColumns = (): Columns => ({ reports: [], bytes: 0 });

/**
 * The parameters of writeReports: the reports sorted by key (two writers then take their keys'
 * locks in the same order, and never wait on each other in a cycle), as columns, with the
 * results laid end to end in one buffer.
 */
function statementParameters(reports: Columns["reports"]): unknown[] {
  const sorted = [...reports].sort((a, b) => a.id - b.id || a.report.index - b.report.index);
  const lengths = sorted.map(({ report }) =>
    report.kind === "result" ? report.value.byteLength : -1,
  );
  return [
    sorted.map(({ id }) => id),
    sorted.map(({ report }) => report.index),
    lengths,
    sorted.map(({ report }) => (report.kind === "error" ? report.value : null)),
    Buffer.concat(sorted.flatMap(({ report }) => (report.kind === "result" ? [report.value] : []))),
    offsetsOf(lengths),
  ];
}

/**
 * Writes the reports of several callers: each report is inserted unless its task has one (the
 * primary key decides, whichever process is first), and the counts of each request grow by
 * what was inserted, in the same statement. Of two reports for one task in the same flush, the
 * earlier is the one sent. A group with an unknown request or task is refused whole, without
 * failing the others: its outcome is the error.
 */
export async function writeReports(
  opened: Opened,
  groups: readonly ReportGroup[],
  retried = false,
): Promise<(boolean[] | SheepdogError)[]> {
  const writes: Columns[] = [noColumns()];
  const sent = new Set<string>();
  const outcomes: (SheepdogError | (string | undefined)[])[] = [];
  for (const { id, reports } of groups) {
    try {
      checkIndices(
        id,
        await opened.shapes.of(opened.db, id),
        reports.map((r) => r.index),
      );
    } catch (error) {
      outcomes.push(error as SheepdogError);
      continue;
    }
    // The key of each report that is sent; undefined for a later report of a task in this flush.
    outcomes.push(reports.map((report) => addReport(writes, sent, id, report)));
  }
  const stored = new Set<string>();
  for (const columns of writes) {
    if (columns.reports.length === 0) continue;
    const rows = await query<{ request_id: number; idx: number }>(
      opened.db,
      opened.sql.writeReports,
      statementParameters(columns.reports),
    );
    for (const row of rows) stored.add(`${row.request_id}:${row.idx}`);
    if (retried) await findOwnReports(opened, columns.reports, stored);
  }
  return outcomes.map((outcome) =>
    Array.isArray(outcome)
      ? outcome.map((key) => key !== undefined && stored.has(key))
      : (outcome as SheepdogError),
  );
}

/**
 * After a try whose connection was lost, perhaps after its COMMIT: the reports that this try
 * found already stored and that are the same as the ones sent (the same result's bytes, or the
 * same error) were stored by the lost try, so they count as stored. Adds their keys to `stored`.
 */
async function findOwnReports(
  opened: Opened,
  reports: Columns["reports"],
  stored: Set<string>,
): Promise<void> {
  const missing = reports.filter(({ id, report }) => !stored.has(`${id}:${report.index}`));
  if (missing.length === 0) return;
  const rows = await query<{
    request_id: number;
    idx: number;
    result: Buffer | null;
    error: string | null;
  }>(opened.db, opened.sql.reportsOf, [
    missing.map(({ id }) => id),
    missing.map(({ report }) => report.index),
  ]);
  const found = new Map(rows.map((row) => [`${row.request_id}:${row.idx}`, row]));
  for (const { id, report } of missing) {
    const row = found.get(`${id}:${report.index}`);
    const same =
      report.kind === "result"
        ? row?.result != null && Buffer.from(report.value).equals(row.result)
        : row?.error === report.value;
    if (same) stored.add(`${id}:${report.index}`);
  }
}

/**
 * Adds a report to the last statement's columns (or a new statement's, when that one is full),
 * unless a report of its task is already in them; its key, if sent.
 */
function addReport(
  writes: Columns[],
  sent: Set<string>,
  id: RequestId,
  report: StoreReport,
): string | undefined {
  const key = `${id}:${report.index}`;
  if (sent.has(key)) return undefined;
  sent.add(key);
  const size = report.kind === "result" ? report.value.byteLength : 0;
  let columns = writes[writes.length - 1] as Columns;
  const full =
    columns.reports.length >= REPORTS_PER_WRITE || columns.bytes + size > BYTES_PER_WRITE;
  if (full && columns.reports.length > 0) {
    columns = noColumns();
    writes.push(columns);
  }
  columns.reports.push({ id, report });
  columns.bytes += size;
  return key;
}

/**
 * Deletes the reports of the tasks `indices` of request `id`, and takes them from its counts, in
 * one transaction.
 */
export async function resetTasks(
  { db, sql, shapes }: Opened,
  id: RequestId,
  indices: readonly number[],
): Promise<void> {
  await shapes.withTasks(db, id, indices);
  const unique = [...new Set(indices)];
  if (unique.length === 0) return;
  await db.transaction().execute(async (trx) => {
    const removed = await query<{ was_result: boolean }>(trx, sql.deleteReports, [id, unique]);
    const results = removed.filter((row) => row.was_result).length;
    const errors = removed.length - results;
    if (results + errors > 0) await query(trx, sql.addCounts, [-results, -errors, id]);
  });
}
