import type { RequestId, SheepdogError, StoreReport } from "@sheepdog/contracts";
import { taskFactsProblem } from "@sheepdog/contracts";
import type { Opened } from "./database.js";
import { invalidInput } from "./errors.js";
import type { FactColumns } from "./facts.js";
import { addFacts, factParameters, factsInOrder, packedInOrder } from "./facts.js";
import { query } from "./kysely.js";
import { checkIndices } from "./shapes.js";
import { intArray, isBytes, offsetsOf } from "./values.js";

/** Checks that `reports` is an array of well-formed reports (their tasks are checked later). */
export function checkReports(reports: readonly StoreReport[]): void {
  if (!Array.isArray(reports)) throw invalidInput("putReports needs an array of reports.");
  for (const report of reports) {
    const ok =
      typeof report === "object" &&
      report !== null &&
      ((report.kind === "result" && isBytes(report.value)) ||
        (report.kind === "error" &&
          typeof report.value === "string" &&
          (report.provisional === undefined || typeof report.provisional === "boolean")));
    if (!ok) {
      throw invalidInput(
        'Each report must be { index, kind: "result", value: Uint8Array } or { index, kind: "error", value: string, provisional?: boolean }.',
      );
    }
    const problem = report.facts === undefined ? undefined : taskFactsProblem(report.facts);
    if (problem !== undefined) throw invalidInput(problem);
  }
}

/** One caller's reports for one request. */
export interface ReportGroup {
  id: RequestId;
  reports: readonly StoreReport[];
}

/** Task keys (request, index), without building a string per key. */
class Keys {
  readonly #byRequest = new Map<RequestId, Set<number>>();

  has(id: RequestId, index: number): boolean {
    return this.#byRequest.get(id)?.has(index) ?? false;
  }

  add(id: RequestId, index: number): void {
    let indices = this.#byRequest.get(id);
    if (!indices) {
      indices = new Set();
      this.#byRequest.set(id, indices);
    }
    indices.add(index);
  }

  delete(id: RequestId, index: number): void {
    this.#byRequest.get(id)?.delete(index);
  }
}

/** The reports of one statement (see statements.ts, writeReports), as its columns. */
interface Columns {
  ids: RequestId[];
  indices: number[];
  /** The result's length, or -1 for an error. */
  lengths: number[];
  errors: (string | null)[];
  /** Per report: whether it is a provisional error. */
  provisional: boolean[];
  results: Uint8Array[];
  /** Their facts, once one of them has some. */
  facts: FactColumns | undefined;
  bytes: number;
  /** Whether the reports came in key order (then they need no sorting). */
  sorted: boolean;
}

/** A statement carries at most this many reports, ... */
const REPORTS_PER_WRITE = 10_000;
/** ... and about this many bytes of results. */
const BYTES_PER_WRITE = 32 * 1024 * 1024;

const noColumns = (): Columns => ({
  ids: [],
  indices: [],
  lengths: [],
  errors: [],
  provisional: [],
  results: [],
  facts: undefined,
  bytes: 0,
  sorted: true,
});

/**
 * The columns in key order: two writers then take their keys' locks in the same order, and never
 * wait on each other in a cycle. Reports mostly come in order already.
 */
function inKeyOrder(columns: Columns): Columns {
  if (columns.sorted) return columns;
  const { ids, indices, lengths, errors, provisional } = columns;
  const order = ids
    .map((_, i) => i)
    .sort(
      (a, b) =>
        (ids[a] as number) - (ids[b] as number) || (indices[a] as number) - (indices[b] as number),
    );
  return {
    ids: order.map((i) => ids[i] as number),
    indices: order.map((i) => indices[i] as number),
    lengths: order.map((i) => lengths[i] as number),
    errors: order.map((i) => errors[i] ?? null),
    provisional: order.map((i) => provisional[i] === true),
    results: packedInOrder(lengths, columns.results, order),
    facts: columns.facts && factsInOrder(columns.facts, order),
    bytes: columns.bytes,
    sorted: true,
  };
}

/** U+2400, SYMBOL FOR NULL: what a NUL in an error's text is stored as. */
const NUL_STAND_IN = "\u2400";

/**
 * An error's text as PostgreSQL's `text` can hold it: it cannot hold a NUL (a Python error may
 * print one), and one such report would fail its whole statement; each NUL becomes `␀`.
 */
export function storableText(text: string): string {
  return text.includes("\0") ? text.replaceAll("\0", NUL_STAND_IN) : text;
}

/**
 * Writes the reports of several callers: each report is inserted unless its task has one (the
 * primary key decides, whichever process is first), and the counts of each request grow by
 * what was inserted, in the same statement; a real report replaces a provisional error. Of two
 * reports for one task in the same flush, the earlier is the one sent (unless it is a provisional
 * error and the later a real report: then both are, in that order). A group with an unknown request or task is refused whole, without
 * failing the others: its outcome is the error. With `retried` (an earlier try lost its
 * connection), see {@link findOwnReports}.
 */
export async function writeReports(
  opened: Opened,
  groups: readonly ReportGroup[],
  retried = false,
): Promise<(boolean[] | SheepdogError)[]> {
  const writes: Columns[] = [noColumns()];
  const sent = { all: new Keys(), provisional: new Keys() };
  // Per group: the error, or for each report the statement it was sent in (-1: not sent, as a
  // later one of its task).
  const outcomes: (SheepdogError | number[])[] = [];
  for (const { id, reports } of groups) {
    try {
      const tasks = await opened.shapes.of(opened.db, id);
      checkIndices(
        id,
        tasks,
        reports.map((report) => report.index),
      );
    } catch (error) {
      outcomes.push(error as SheepdogError);
      continue;
    }
    outcomes.push(reports.map((report) => addReport(writes, sent, id, report)));
  }
  const stored = writes.map(() => new Keys());
  for (const [w, columns] of writes.entries()) {
    const keys = stored[w] as Keys;
    if (columns.ids.length > 0) await writeColumns(opened, inKeyOrder(columns), keys, retried);
  }
  return outcomes.map((outcome, g) => {
    if (!Array.isArray(outcome)) return outcome;
    const { id, reports } = groups[g] as ReportGroup;
    return outcome.map(
      (w, i) => w >= 0 && (stored[w] as Keys).has(id, (reports[i] as StoreReport).index),
    );
  });
}

/** Runs one writeReports statement, and adds the keys it stored to `stored`. */
async function writeColumns(
  opened: Opened,
  columns: Columns,
  stored: Keys,
  retried: boolean,
): Promise<void> {
  const { ids, indices, lengths, errors, provisional, results } = columns;
  const [row] = await query<{ inserted: number; ids: number[] | null; indices: number[] | null }>(
    opened.db,
    opened.sql.writeReports,
    [
      intArray(ids),
      intArray(indices),
      intArray(lengths),
      // No array at all when there is no error: unnest pads a missing array with nulls.
      errors.some((error) => error !== null) ? errors : null,
      Buffer.concat(results),
      intArray(offsetsOf(lengths)),
      ids.length,
      provisional.includes(true) ? provisional : null,
      ...factParameters(columns.facts),
    ],
  );
  if (row && row.inserted === ids.length) {
    for (let i = 0; i < ids.length; i++) stored.add(ids[i] as number, indices[i] as number);
    return;
  }
  const insertedIds = row?.ids ?? [];
  const insertedIndices = row?.indices ?? [];
  for (let i = 0; i < insertedIds.length; i++) {
    stored.add(insertedIds[i] as number, insertedIndices[i] as number);
  }
  if (retried) await findOwnReports(opened, columns, stored);
}

/**
 * After a try whose connection was lost, perhaps after its COMMIT: the reports that this try
 * found already stored and that are the same as the ones sent (the same result's bytes, or the
 * same error) were stored by the lost try, so they count as stored. Adds their keys to `stored`.
 */
async function findOwnReports(opened: Opened, columns: Columns, stored: Keys): Promise<void> {
  const { ids, indices, lengths, errors } = columns;
  const resultAt = new Map<number, Uint8Array>();
  let next = 0;
  lengths.forEach((length, i) => {
    if (length >= 0) resultAt.set(i, columns.results[next++] as Uint8Array);
  });
  const missing = ids
    .map((_, i) => i)
    .filter((i) => !stored.has(ids[i] as number, indices[i] as number));
  if (missing.length === 0) return;
  const rows = await query<{
    request_id: number;
    idx: number;
    result: Buffer | null;
    error: string | null;
  }>(opened.db, opened.sql.reportsOf, [missing.map((i) => ids[i]), missing.map((i) => indices[i])]);
  const found = new Map(rows.map((row) => [`${row.request_id}:${row.idx}`, row]));
  for (const i of missing) {
    const row = found.get(`${ids[i]}:${indices[i]}`);
    const result = resultAt.get(i);
    const same = result
      ? row?.result != null && Buffer.from(result).equals(row.result)
      : row?.error === errors[i];
    if (same) stored.add(ids[i] as number, indices[i] as number);
  }
}

/** The keys of the reports a flush sends, and of those that are provisional errors. */
interface SentKeys {
  all: Keys;
  provisional: Keys;
}

/**
 * Adds a report to the last statement's columns (or a new statement's, when that one is full),
 * unless a report of its task is already in them; the statement it was added to, or -1. A real
 * report after a provisional error of its task goes in a new statement, which runs after (and
 * replaces) it.
 */
function addReport(writes: Columns[], sent: SentKeys, id: RequestId, report: StoreReport): number {
  const provisional = report.kind === "error" && report.provisional === true;
  const replacing = !provisional && sent.provisional.has(id, report.index);
  if (sent.all.has(id, report.index) && !replacing) return -1;
  sent.all.add(id, report.index);
  if (provisional) sent.provisional.add(id, report.index);
  if (replacing) sent.provisional.delete(id, report.index);
  const size = report.kind === "result" ? report.value.byteLength : 0;
  let columns = writes[writes.length - 1] as Columns;
  const full = columns.ids.length >= REPORTS_PER_WRITE || columns.bytes + size > BYTES_PER_WRITE;
  if ((full || replacing) && columns.ids.length > 0) {
    columns = noColumns();
    writes.push(columns);
  }
  const last = columns.ids.length - 1;
  if (last >= 0) {
    const lastId = columns.ids[last] as number;
    if (lastId > id || (lastId === id && (columns.indices[last] as number) > report.index)) {
      columns.sorted = false;
    }
  }
  columns.facts = addFacts(columns.facts, columns.ids.length, report.facts);
  columns.ids.push(id);
  columns.indices.push(report.index);
  columns.provisional.push(provisional);
  if (report.kind === "result") {
    columns.lengths.push(size);
    columns.errors.push(null);
    columns.results.push(report.value);
  } else {
    columns.lengths.push(-1);
    columns.errors.push(storableText(report.value));
  }
  columns.bytes += size;
  return writes.length - 1;
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
