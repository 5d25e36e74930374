import type { RequestId } from "@sheepdog/contracts";
import type { Connection } from "./connection.js";
import type { PackedStatements } from "./packed.js";
import { inOrder, readLarge, unpack } from "./packed.js";
import type { ReadStatements } from "./read-statements.js";
import { cells, firstRow } from "./rows.js";

/** getArgs reads this many arguments or more as packed slices (see packed.ts), ... */
const PACKED_FROM = 32;
/** ... of at most this many rows each. */
const ARGS_PER_SLICE = 4096;

/** The arguments of tasks `start .. start + count - 1` of request `id`. */
export function getArgs(c: Connection, id: RequestId, start: number, count: number): Uint8Array[] {
  const { firstArg } = c.shapes.range(id, start, count);
  const from = firstArg + start;
  const { packed } = c.reads;
  if (packed === undefined || count < PACKED_FROM) return argsRowByRow(c.reads, from, from + count);
  const args: Uint8Array[] = [];
  for (let slice = from; slice < from + count; slice += ARGS_PER_SLICE) {
    const size = Math.min(ARGS_PER_SLICE, from + count - slice);
    for (const value of packedArgs(c.reads, packed, slice, size)) args.push(value);
  }
  return args;
}

/** The values of args rows `[from, to)`, one row at a time. */
function argsRowByRow(reads: ReadStatements, from: number, to: number): Uint8Array[] {
  return reads.args.all([from, to]).map((row) => cells(row)[0] as Uint8Array);
}

/** The values of args rows `[from, from + size)`, packed, or row by row if they came out of order. */
function packedArgs(
  reads: ReadStatements,
  packed: PackedStatements,
  from: number,
  size: number,
): Uint8Array[] {
  const [ids, lengths, hex] = cells(firstRow(packed.args, [from, from + size]));
  if (!inOrder(ids, from, size)) return argsRowByRow(reads, from, from + size);
  return unpack(lengths, hex, size, (i) => readLarge(packed.largeArg, from + i)) as Uint8Array[];
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
