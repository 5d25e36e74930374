import { SheepdogError } from "../errors.js";
import { source } from "../internal/source.js";
import type { StoreReport, TaskFacts } from "../store.js";
import { logCutMark, MAX_LOG_BYTES } from "../store.js";
import type { ReportFrame } from "./frames.js";
import type { TaskRange } from "./task-layout.js";
import { strictUtf8Text } from "./utf8.js";

/** Whether `payload` looks like a pickle of protocol 2 to 5: PROTO <version> ... STOP. */
export function isPickle(payload: Uint8Array): boolean {
  const version = payload[1];
  return (
    payload.byteLength >= 3 &&
    payload[0] === 0x80 &&
    version !== undefined &&
    version >= 2 &&
    version <= 5 &&
    payload[payload.byteLength - 1] === 0x2e
  );
}

const utf8 = new TextEncoder();
const lenientUtf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * `log` as a report carries it: whole when it is at most `maxBytes` UTF-8 bytes, else its tail
 * (cut at a character's start) after the line of {@link logCutMark}, at most `maxBytes` in all.
 *
 * @example
 * ```ts
 * tailOfLog("x".repeat(100_000)); // "[sheepdog: 34493 bytes cut]\n" and the last 65507 x's
 * ```
 */
export function tailOfLog(log: string, maxBytes: number = MAX_LOG_BYTES): string {
  // A UTF-16 code unit is at most 3 UTF-8 bytes: most logs need no encoding to know.
  if (log.length * 3 <= maxBytes) return log;
  const bytes = utf8.encode(log);
  if (bytes.byteLength <= maxBytes) return log;
  let start =
    bytes.byteLength - Math.max(0, maxBytes - utf8.encode(logCutMark(bytes.byteLength)).byteLength);
  // Not inside a character: skip its continuation bytes (10xxxxxx).
  while (start < bytes.byteLength && ((bytes[start] as number) & 0xc0) === 0x80) start += 1;
  return logCutMark(start) + lenientUtf8.decode(bytes.subarray(start));
}

/** The facts of a frame, for the store, or `undefined` when it has none. */
function factsOf(frame: ReportFrame): TaskFacts | undefined {
  const { startedAt, endedAt, host, peakMemoryBytes, attempt, log } = frame;
  if (
    startedAt === undefined &&
    endedAt === undefined &&
    host === undefined &&
    peakMemoryBytes === undefined &&
    attempt === undefined &&
    log === undefined
  ) {
    return undefined;
  }
  // Field by field: a spread of each present field costs an object per field.
  const facts: TaskFacts = {};
  if (startedAt !== undefined) facts.startedAt = startedAt;
  if (endedAt !== undefined) facts.endedAt = endedAt;
  if (host !== undefined) facts.host = host;
  if (peakMemoryBytes !== undefined) facts.peakMemoryBytes = peakMemoryBytes;
  if (attempt !== undefined) facts.attempt = attempt;
  if (log !== undefined) facts.log = tailOfLog(log);
  return facts;
}

/**
 * A write of a result or an error: made by a class, not an object literal, for the reason
 * `decodeReports` gives (V8 would make every later write of a busy server in the old
 * generation). `facts` is set only when there are some, as a literal would leave it out.
 */
class ReportWrite<K extends StoreReport["kind"], V extends string | Uint8Array> {
  readonly index: number;
  readonly kind: K;
  readonly value: V;
  declare readonly facts?: TaskFacts;

  constructor(index: number, kind: K, value: V, facts: TaskFacts | undefined) {
    this.index = index;
    this.kind = kind;
    this.value = value;
    if (facts !== undefined) (this as { facts?: TaskFacts }).facts = facts;
  }
}

function refuse(message: string): SheepdogError {
  return new SheepdogError("INVALID_INPUT", source, message);
}

/**
 * The store writes of one post's reports (or one spool file's) from the task `range` covers,
 * each with its facts (a log longer than `MAX_LOG_BYTES` cut to its tail, see {@link tailOfLog}).
 * Throws a `SheepdogError` (`INVALID_INPUT`), refusing them all, when a report is outside the
 * task, a second one for an index, an error that is not UTF-8 or a result that is not a pickle.
 *
 * @example
 * ```ts
 * const writes = reportWrites(decodeReports(body), taskRange(layout, task));
 * ```
 */
export function reportWrites(reports: readonly ReportFrame[], range: TaskRange): StoreReport[] {
  const members = range.indices && new Set(range.indices);
  const inTask = members
    ? (index: number) => members.has(index)
    : (index: number) => index >= range.first && index < range.first + range.count;
  const seen = new Set<number>();
  return reports.map((frame): StoreReport => {
    const { index, kind, payload } = frame;
    if (!inTask(index)) throw refuse("A report's index is outside this task's range.");
    if (seen.has(index)) throw refuse("A post carries two reports for the same index.");
    seen.add(index);
    const facts = factsOf(frame);
    if (kind === "error") {
      let value: string;
      try {
        value = strictUtf8Text(payload);
      } catch {
        throw refuse("An error report is not UTF-8 text.");
      }
      return new ReportWrite(index, "error", value, facts);
    }
    if (!isPickle(payload)) throw refuse("A result is not a pickle of protocol 2 to 5.");
    return new ReportWrite(index, "result", payload, facts);
  });
}
