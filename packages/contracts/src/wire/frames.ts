import { Buffer } from "node:buffer";
import { SheepdogError } from "../errors.js";
import { source } from "../internal/source.js";
import type { TaskFacts } from "../store.js";
import { taskFactsProblem } from "../store.js";
import type {
  ReportColumn,
  ReportColumns,
  ReportColumnsHeader,
  ReportEntry,
  TaskHeader,
} from "../wire.js";
import { WIRE_VERSION } from "../wire.js";
import { strictUtf8Text } from "./utf8.js";

/** The largest section a frame can carry: its length is a 4-byte unsigned integer. */
const MAX_SECTION_BYTES = 0xffff_ffff;

/** What a task fetch carries: the header, the function, the namespace and the argument tuples. */
export interface TaskFrames {
  header: TaskHeader;
  /** The function's bytes, as the store keeps them (UTF-8 JSON of a `FunctionSource`). */
  func: Uint8Array;
  /** The namespace's bytes (a pickle, or empty for no namespace). */
  ns: Uint8Array;
  /** One pickled argument tuple per task in the chunk, `header.count` of them. */
  args: Uint8Array[];
}

/** One report in a report post: a result's pickle, or an error's UTF-8 traceback. */
export interface ReportFrame extends ReportEntry {
  payload: Uint8Array;
}

function frameError(message: string): SheepdogError {
  return new SheepdogError("INVALID_INPUT", source, message);
}

/**
 * Joins sections into one frame body: each section is a 4-byte big-endian length followed by
 * its bytes. The body is a `Buffer` whose every byte is written; a small one is a slice of
 * Node's shared pool, as `Buffer.allocUnsafe` gives (a new ArrayBuffer costs a server more
 * than the rest of the encoding), so read it through its `byteOffset`.
 *
 * @example
 * ```ts
 * const body = encodeFrames([new TextEncoder().encode("{}"), pickle]);
 * ```
 */
export function encodeFrames(sections: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const section of sections) {
    if (section.byteLength > MAX_SECTION_BYTES) {
      throw frameError(
        `A frame section of ${section.byteLength} bytes is larger than 4 GiB. Send smaller values.`,
      );
    }
    total += 4 + section.byteLength;
  }
  const body = Buffer.allocUnsafe(total);
  let offset = 0;
  for (const section of sections) {
    body.writeUInt32BE(section.byteLength, offset);
    body.set(section, offset + 4);
    offset += 4 + section.byteLength;
  }
  return body;
}

/**
 * Splits a frame body into its sections (views into `body`, not copies).
 * Throws a `SheepdogError` (`INVALID_INPUT`) when the body is truncated or has trailing bytes.
 */
export function decodeFrames(body: Uint8Array): Uint8Array[] {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const sections: Uint8Array[] = [];
  let offset = 0;
  while (offset < body.byteLength) {
    if (body.byteLength - offset < 4) {
      throw frameError("The frame body ends inside a section length. Send whole frames.");
    }
    const length = view.getUint32(offset);
    offset += 4;
    if (length > body.byteLength - offset) {
      throw frameError(
        "A frame section is longer than the bytes that follow it. Send whole frames.",
      );
    }
    sections.push(body.subarray(offset, offset + length));
    offset += length;
  }
  return sections;
}

function parseJsonSection(section: Uint8Array | undefined, what: string): unknown {
  if (section === undefined) throw frameError(`The ${what} is missing. Send a JSON header first.`);
  let text: string;
  try {
    text = strictUtf8Text(section);
  } catch {
    throw frameError(`The ${what} is not UTF-8. Send a UTF-8 JSON header.`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw frameError(`The ${what} is not JSON. Send a UTF-8 JSON header.`);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isIndex(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** Encodes a task fetch reply: `[TaskHeader, func, ns, args...]`. */
export function encodeTaskFrames(task: TaskFrames): Uint8Array {
  checkArgCount(task.header, task.args.length);
  return encodeFrames([...headSections(task), ...task.args]);
}

/**
 * The same reply as {@link encodeTaskFrames}, from argument tuples already encoded a run at a
 * time (`encodeFrames` of consecutive tuples, `count` of them in all), for a server that reads
 * a large task's tuples a slice at a time.
 */
export function encodeTaskFramesOfRuns(
  task: Omit<TaskFrames, "args"> & { runs: readonly Uint8Array[]; count: number },
): Uint8Array {
  checkArgCount(task.header, task.count);
  return Buffer.concat([encodeFrames(headSections(task)), ...task.runs]);
}

function headSections(task: Pick<TaskFrames, "header" | "func" | "ns">): Uint8Array[] {
  return [Buffer.from(JSON.stringify(task.header)), task.func, task.ns];
}

function checkArgCount(header: TaskHeader, count: number): void {
  if (count !== header.count) {
    throw frameError(
      `The task header says ${header.count} argument tuples but ${count} were given.`,
    );
  }
}

/**
 * Decodes a task fetch reply. Throws a `SheepdogError` (`INVALID_INPUT`) when the frames, the
 * header, or the number of argument sections are wrong.
 */
export function decodeTaskFrames(body: Uint8Array): TaskFrames {
  const sections = decodeFrames(body);
  const header = parseJsonSection(sections[0], "task header");
  if (
    !isRecord(header) ||
    header.version !== WIRE_VERSION ||
    !isIndex(header.request) ||
    !isIndex(header.task) ||
    !isIndex(header.first) ||
    !isIndex(header.count)
  ) {
    throw frameError(`The task header does not have the fields of wire version ${WIRE_VERSION}.`);
  }
  const indices = header.indices;
  if (
    indices !== undefined &&
    (!Array.isArray(indices) ||
      indices.length !== header.count ||
      !indices.every(isIndex) ||
      indices[0] !== header.first)
  ) {
    throw frameError("The task header's indices do not list its count of argument indices.");
  }
  const func = sections[1];
  const ns = sections[2];
  if (func === undefined || ns === undefined || sections.length - 3 !== header.count) {
    throw frameError("The task reply does not carry func, ns and one section per argument tuple.");
  }
  return {
    header: {
      version: WIRE_VERSION,
      request: header.request,
      task: header.task,
      first: header.first,
      count: header.count,
      ...(indices !== undefined && { indices: [...(indices as number[])] }),
    },
    func,
    ns,
    args: sections.slice(3),
  };
}

/**
 * Encodes a report post: `[ReportHeader, payload...]`, the header's entries as columns (see
 * {@link ReportColumns}). An error's payload is its UTF-8 text; a report's facts (`startedAt`,
 * `host`, `log`, ...) are its values in the header's columns.
 */
export function encodeReports(reports: readonly ReportFrame[]): Uint8Array {
  const header: ReportColumnsHeader = { version: WIRE_VERSION, columns: columnsOf(reports) };
  return encodeFrames([Buffer.from(JSON.stringify(header)), ...reports.map((r) => r.payload)]);
}

/**
 * The header columns of `reports`: a fact's column only where some report has that fact, and
 * logs always as a list.
 */
function columnsOf(reports: readonly ReportFrame[]): ReportColumns {
  const columns: ReportColumns = {
    index: reports.map((report) => report.index),
    kind: columnOf(reports.map((report) => report.kind)) as ReportColumns["kind"],
  };
  for (const field of FACT_FIELDS) {
    const values = reports.map((report) => report[field] ?? null);
    if (values.some((value) => value !== null)) {
      (columns as unknown as Record<string, unknown>)[field] =
        field === "log" ? values : columnOf(values);
    }
  }
  return columns;
}

/** One value for all when every report has the same, else one per report. */
function columnOf<T>(values: (T | null)[]): ReportColumn<T> {
  const first = values[0];
  const shared = first !== undefined && first !== null && values.every((value) => value === first);
  return shared ? first : values;
}

/** The fields of a header entry that are {@link TaskFacts}. */
const FACT_FIELDS = [
  "startedAt",
  "endedAt",
  "host",
  "peakMemoryBytes",
  "attempt",
  "log",
] as const satisfies readonly (keyof TaskFacts)[];

/**
 * A decoded report: an instance of a class rather than an object literal, because V8 keeps
 * count of where literals are made. The thousands of reports of one post are all alive when a
 * young-generation collection comes in the middle of them; V8 then takes their literal for one
 * that makes long-lived objects and makes every later one in the old generation, where each
 * waits for a full collection and keeps what it points to (its payload's view) from dying
 * young. A million trivial calls promoted about 40% fewer bytes once reports were made so,
 * with 15% less CPU in the client. `reportWrites` makes its writes so for the same reason.
 */
class DecodedReport {
  readonly index: number;
  readonly kind: ReportFrame["kind"];
  readonly payload: Uint8Array;

  constructor(index: number, kind: ReportFrame["kind"], payload: Uint8Array) {
    this.index = index;
    this.kind = kind;
    this.payload = payload;
  }
}

/**
 * The report of a header entry and its payload, with the entry's facts, checked (a check of six
 * fields, no more, for a report without facts).
 */
function reportFrame(
  entry: Record<string, unknown>,
  kind: ReportFrame["kind"],
  payload: Uint8Array,
): ReportFrame {
  const frame: ReportFrame = new DecodedReport(entry.index as number, kind, payload);
  let facts = false;
  for (const field of FACT_FIELDS) {
    const value = entry[field];
    if (value !== undefined) {
      (frame as unknown as Record<string, unknown>)[field] = value;
      facts = true;
    }
  }
  return facts ? checkedFacts(frame) : frame;
}

/** `frame`, once its facts are checked (the check reads the fact fields only). */
function checkedFacts(frame: ReportFrame): ReportFrame {
  const problem = taskFactsProblem(frame);
  if (problem !== undefined) {
    throw frameError(
      `A report's facts are malformed: ${problem} Send each fact with its type and bounds, or leave it out.`,
    );
  }
  return frame;
}

function checkedKind(kind: unknown): ReportFrame["kind"] {
  if (kind !== "result" && kind !== "error") {
    throw frameError('A report\'s kind is neither "result" nor "error".');
  }
  return kind;
}

function checkedIndex(index: unknown): number {
  if (!isIndex(index)) throw frameError("A report has no valid index (a non-negative integer).");
  return index;
}

/**
 * Decodes a report post, with each report's facts (see {@link ReportEntry}), whichever shape its
 * header has (see {@link ReportHeader}). Throws a `SheepdogError` (`INVALID_INPUT`) when the
 * frames or the header are malformed, the header does not give exactly one report per payload,
 * or a fact has the wrong type or is out of bounds (the length of a log is not checked here:
 * `reportWrites` cuts it). Unknown fields are ignored.
 */
export function decodeReports(body: Uint8Array): ReportFrame[] {
  const sections = decodeFrames(body);
  const header = parseJsonSection(sections[0], "report header");
  if (isRecord(header) && header.version === WIRE_VERSION) {
    if (Array.isArray(header.reports)) return reportsOfEntries(header.reports, sections);
    if (isRecord(header.columns)) return reportsOfColumns(header.columns, sections);
  }
  throw frameError(`The report header does not have the fields of wire version ${WIRE_VERSION}.`);
}

function checkReportCount(count: number, sections: readonly Uint8Array[]): void {
  if (count !== sections.length - 1) {
    throw frameError("The report header does not list exactly one report per payload section.");
  }
}

/** The reports of a header that lists entries (`sections[0]` is the header). */
function reportsOfEntries(entries: unknown[], sections: readonly Uint8Array[]): ReportFrame[] {
  checkReportCount(entries.length, sections);
  return entries.map((entry, i) => {
    const record = isRecord(entry) ? entry : {};
    checkedIndex(record.index);
    return reportFrame(record, checkedKind(record.kind), sections[i + 1] as Uint8Array);
  });
}

/** The reports of a header of columns (`sections[0]` is the header). */
function reportsOfColumns(
  columns: Record<string, unknown>,
  sections: readonly Uint8Array[],
): ReportFrame[] {
  const indices = columns.index;
  if (!Array.isArray(indices)) {
    throw frameError("The report header's columns have no index list. List every report's index.");
  }
  const count = indices.length;
  checkReportCount(count, sections);
  if (columns.log !== undefined && !Array.isArray(columns.log)) {
    // A log is one call's: shared, a 64 KiB log would be stored once per report.
    throw frameError(
      "The report header's log column is not a list. Give one log per report (null for none).",
    );
  }
  const kindAt = columnReader(columns.kind, count, "kind");
  const facts = FACT_FIELDS.filter((field) => columns[field] !== undefined).map(
    (field) => [field, columnReader(columns[field], count, field)] as const,
  );
  return indices.map((index, i) => {
    const frame = new DecodedReport(
      checkedIndex(index),
      checkedKind(kindAt(i)),
      sections[i + 1] as Uint8Array,
    );
    let anyFact = false;
    for (const [field, valueAt] of facts) {
      const value = valueAt(i);
      if (value !== null) {
        (frame as unknown as Record<string, unknown>)[field] = value;
        anyFact = true;
      }
    }
    return anyFact ? checkedFacts(frame) : frame;
  });
}

/** The value of a {@link ReportColumn} for the report at a position. */
function columnReader(column: unknown, count: number, name: string): (at: number) => unknown {
  if (Array.isArray(column)) {
    if (column.length !== count) {
      throw frameError(
        `The report header's ${name} column has ${column.length} values for ${count} reports. Give one value per report, or one for all.`,
      );
    }
    return (at) => column[at];
  }
  if (column === null || column === undefined) {
    throw frameError(
      `The report header's ${name} column is missing or null. Give one value per report, or one for all.`,
    );
  }
  return () => column;
}
