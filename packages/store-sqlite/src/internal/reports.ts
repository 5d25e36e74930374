import type { RequestId, SheepdogError, StoreReport, TaskFacts } from "@sheepdog/contracts";
import { taskFactsProblem } from "@sheepdog/contracts";
import type { Connection } from "./connection.js";
import { kyselyOf } from "./connection.js";
import { invalidInput } from "./errors.js";
import { loadKysely } from "./kysely.js";
import type { ReportStatements } from "./report-statements.js";
import { OUTCOME_PARAMETERS, REPORT_PARAMETERS, REPORTS_PER_INSERT } from "./report-statements.js";
import { isBytes } from "./rows.js";
import type { Shape } from "./shapes.js";

/** How many reports resetTasks deletes per statement. */
const ROWS_PER_DELETE = 500;

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

/**
 * Inserts each report unless its task already has one (the primary key decides, so two
 * processes racing on one task store one report) or, for a real report, puts it in place of
 * its task's provisional error; then adds to the counts once per request.
 * A group with an unknown request or task is refused whole, without failing the others: its
 * outcome is the error. The caller holds a write transaction.
 */
export function writeReports(
  c: Connection,
  groups: readonly ReportGroup[],
): (boolean[] | SheepdogError)[] {
  const added = new Map<RequestId, { results: number; errors: number }>();
  const outcomes = groups.map(({ id, reports }) => {
    let shape: Shape;
    try {
      shape = c.shapes.withTasks(
        id,
        reports.map((report) => report.index),
      );
    } catch (error) {
      return error as SheepdogError;
    }
    const counts = added.get(id) ?? { results: 0, errors: 0 };
    added.set(id, counts);
    return insertReports(c.reports, shape, reports, counts);
  });
  for (const [id, { results, errors }] of added) {
    if (results !== 0 || errors !== 0) c.reports.addCounts.run([results, errors, id]);
  }
  return outcomes;
}

/** Counts of the reports a write stored, by kind. */
interface Added {
  results: number;
  errors: number;
}

/**
 * Inserts reports as {@link insertReport} does, whether each was stored: REPORTS_PER_INSERT in
 * one statement where none is a provisional error, the rest one by one.
 */
function insertReports(
  statements: ReportStatements,
  shape: Shape,
  reports: readonly StoreReport[],
  counts: Added,
): boolean[] {
  const stored = new Array<boolean>(reports.length);
  let at = 0;
  for (; at + REPORTS_PER_INSERT <= reports.length; at += REPORTS_PER_INSERT) {
    const chunk = reports.slice(at, at + REPORTS_PER_INSERT);
    const outcomes = chunk.some(isProvisional)
      ? chunk.map((report) => insertReport(statements, shape, report, counts))
      : insertChunk(statements, shape, chunk, counts);
    outcomes.forEach((outcome, i) => {
      stored[at + i] = outcome;
    });
  }
  for (; at < reports.length; at++) {
    stored[at] = insertReport(statements, shape, reports[at] as StoreReport, counts);
  }
  return stored;
}

function isProvisional(report: StoreReport): boolean {
  return report.kind === "error" && report.provisional === true;
}

/** The parameters of insertReports and insertOutcomes, reused: a write runs start to end at once. */
const chunkReports = new Array<unknown>(REPORTS_PER_INSERT * REPORT_PARAMETERS);
const chunkOutcomes = new Array<unknown>(REPORTS_PER_INSERT * OUTCOME_PARAMETERS);
const noParameters: unknown[] = [];

/**
 * Inserts a chunk of real reports, with their facts, in one statement, then their logs. When a
 * report's task had one, or a task comes twice, the statement is undone and the chunk written
 * report by report (see insertReport): SQLite's `RETURNING` would say which rows went in, but
 * collecting a row for every report cost more than the rare second pass.
 */
function insertChunk(
  statements: ReportStatements,
  shape: Shape,
  chunk: readonly StoreReport[],
  counts: Added,
): boolean[] {
  const withFacts = chunk.some((report) => report.facts !== undefined);
  const [insert, parameters, stride] = withFacts
    ? [statements.insertReports, chunkReports, REPORT_PARAMETERS]
    : [statements.insertOutcomes, chunkOutcomes, OUTCOME_PARAMETERS];
  chunk.forEach((report, i) => {
    setReportValues(parameters, i * stride, report, shape.firstArg + report.index, withFacts);
  });
  statements.chunkBegin.run(noParameters);
  const inserted = Number(insert.run(parameters).changes);
  parameters.fill(null);
  if (inserted !== chunk.length) {
    statements.chunkUndo.run(noParameters);
    statements.chunkEnd.run(noParameters);
    return chunk.map((report) => insertReport(statements, shape, report, counts));
  }
  statements.chunkEnd.run(noParameters);
  for (const report of chunk) {
    count(report, counts);
    putLog(statements, shape.firstArg + report.index, report);
  }
  return new Array<boolean>(chunk.length).fill(true);
}

/**
 * Inserts one report unless its task has one, or replaces its task's provisional error with a
 * real report, counting it; whether it was stored. A stored report's facts and log are its
 * task's (a replaced error's go, even when the report has none).
 */
function insertReport(
  statements: ReportStatements,
  shape: Shape,
  report: StoreReport,
  counts: Added,
): boolean {
  const provisional = isProvisional(report);
  const row = shape.firstArg + report.index;
  const values = setReportValues(new Array<unknown>(REPORT_PARAMETERS + 1), 0, report, row);
  values[REPORT_PARAMETERS] = provisional ? 1 : 0;
  if (Number(statements.insertReport.run(values).changes) !== 1) {
    // The task has a report: a provisional error gives way to this real one.
    return !provisional && replaceProvisional(statements, row, report, counts);
  }
  count(report, counts);
  putLog(statements, row, report);
  return true;
}

/**
 * Puts a real report in place of arg row `row`'s provisional error, if it has one, with its
 * facts and log (or none); whether it did.
 */
function replaceProvisional(
  statements: ReportStatements,
  row: number,
  report: StoreReport,
  counts: Added,
): boolean {
  const values = setReportValues(new Array<unknown>(REPORT_PARAMETERS), 0, report, row);
  if (Number(statements.replaceProvisional.run(values).changes) !== 1) return false;
  counts.errors -= 1;
  count(report, counts);
  if (!putLog(statements, row, report)) statements.dropLog.run([row]);
  return true;
}

/** Writes the report's log as arg row `row`'s, if it has one; whether it did. */
function putLog(statements: ReportStatements, row: number, report: StoreReport): boolean {
  const log = report.facts?.log;
  if (log === undefined) return false;
  statements.putLog.run([row, log]);
  return true;
}

function count(report: StoreReport, counts: Added): void {
  if (report.kind === "result") counts.results += 1;
  else counts.errors += 1;
}

/**
 * Puts the report's result and error, its five facts (null where it told none) and its arg row
 * `row` in `values` from `at`, in the order of REPORT in report-statements.ts; without
 * `withFacts`, its result, error and row alone. Returns `values`.
 */
function setReportValues(
  values: unknown[],
  at: number,
  report: StoreReport,
  row: number,
  withFacts = true,
): unknown[] {
  const isResult = report.kind === "result";
  values[at] = isResult ? report.value : null;
  values[at + 1] = isResult ? null : report.value;
  if (!withFacts) {
    values[at + 2] = row;
    return values;
  }
  const facts: TaskFacts | undefined = report.facts;
  values[at + 2] = facts?.startedAt ?? null;
  values[at + 3] = facts?.endedAt ?? null;
  values[at + 4] = facts?.host ?? null;
  values[at + 5] = facts?.peakMemoryBytes ?? null;
  values[at + 6] = facts?.attempt ?? null;
  values[at + 7] = row;
  return values;
}

/**
 * Deletes the reports of the tasks `indices` of request `id` (and their logs), and takes them
 * from its counts.
 * The caller holds a write transaction.
 */
export async function resetTasks(
  c: Connection,
  id: RequestId,
  indices: readonly number[],
): Promise<void> {
  const { firstArg } = c.shapes.withTasks(id, indices);
  let results = 0;
  let errors = 0;
  const rows = [...new Set(indices)].map((index) => firstArg + index);
  const kysely = await kyselyOf(c);
  const { sql } = await loadKysely();
  for (let i = 0; i < rows.length; i += ROWS_PER_DELETE) {
    const removed = await kysely
      .deleteFrom("reports")
      .where("arg_id", "in", rows.slice(i, i + ROWS_PER_DELETE))
      .returning(sql<number>`result IS NOT NULL`.as("was_result"))
      .execute();
    for (const row of removed) {
      if (row.was_result) results += 1;
      else errors += 1;
    }
    await kysely
      .deleteFrom("logs")
      .where("arg_id", "in", rows.slice(i, i + ROWS_PER_DELETE))
      .execute();
  }
  if (results + errors > 0) c.reports.addCounts.run([-results, -errors, id]);
}
