import type { RequestId } from "@sheepdog/contracts";
import type { PackedSlice } from "./arg-slices.js";
import { argsOfSlice } from "./arg-slices.js";
import type { Connection } from "./connection.js";
import { DamagedRows } from "./errors.js";
import type { ReadStatements } from "./read-statements.js";
import { cells, firstRow } from "./rows.js";

/** The arguments of tasks `start .. start + count - 1` of request `id`. */
export function getArgs(c: Connection, id: RequestId, start: number, count: number): Uint8Array[] {
  const { firstArg } = c.shapes.range(id, start, count);
  return argsIn(c.reads, firstArg + start, firstArg + start + count);
}

/** The arguments of arg rows `[from, to)`, as views of their slices' values. */
export function argsIn(reads: ReadStatements, from: number, to: number): Uint8Array[] {
  const args: Uint8Array[] = [];
  if (to <= from) return args;
  for (const row of reads.slicesIn.all([from, from, to])) argsOfSlice(sliceOf(row), from, to, args);
  if (args.length !== to - from) throw missingArgs(from, to, args.length);
  return args;
}

/**
 * Reads the arguments of rows in ascending order, one slice read for the rows a slice holds
 * (the arguments of a request's errors, say).
 */
export class ArgCursor {
  readonly #reads: ReadStatements;
  #slice: PackedSlice | undefined;

  constructor(reads: ReadStatements) {
    this.#reads = reads;
  }

  /** The argument of arg row `row`. */
  at(row: number): Uint8Array {
    let slice = this.#slice;
    if (slice === undefined || row < slice.first || row >= slice.first + slice.count) {
      const found = firstRow(this.#reads.sliceAt, [row]);
      slice = found === undefined ? undefined : sliceOf(found);
      this.#slice = slice;
    }
    const args: Uint8Array[] = [];
    if (slice !== undefined) argsOfSlice(slice, row, row + 1, args);
    const [arg] = args;
    if (arg === undefined) throw missingArgs(row, row + 1, 0);
    return arg;
  }
}

/** A row of `arg_slices` as read by `slicesIn` or `sliceAt`. */
function sliceOf(row: unknown): PackedSlice {
  const [first, count, ends, value] = cells(row) as [number, number, Uint8Array, Uint8Array];
  return { first, count, ends, value };
}

/** The arguments of rows that must exist, but are not all in the file: it was damaged. */
function missingArgs(from: number, to: number, found: number): DamagedRows {
  return new DamagedRows(
    `the arguments of arg rows ${from} to ${to - 1} are missing (found ${found})`,
  );
}

/** The tasks among `start .. start + count - 1` of request `id` that have no report. */
export function unreported(c: Connection, id: RequestId, start: number, count: number): number[] {
  const { firstArg } = c.shapes.range(id, start, count);
  const from = firstArg + start;
  // Most ranges asked about are whole (a task that ended) or empty: counted, nothing is read.
  const reported = Number(cells(firstRow(c.reads.reportedCount, [from, from + count]))[0]);
  if (reported === count) return [];
  const missing: number[] = [];
  let next = from;
  if (reported > 0) {
    for (const row of c.reads.reportedIn.iterate([from, from + count])) {
      const reportedRow = cells(row)[0] as number;
      for (; next < reportedRow; next++) missing.push(next - firstArg);
      next = reportedRow + 1;
    }
  }
  for (; next < from + count; next++) missing.push(next - firstArg);
  return missing;
}
