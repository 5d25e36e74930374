import { SheepdogError } from "../errors.js";
import { source } from "../internal/source.js";
import type { StoreReport } from "../store.js";
import type { ReportFrame } from "./frames.js";
import type { TaskRange } from "./task-layout.js";

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

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

function refuse(message: string): SheepdogError {
  return new SheepdogError("INVALID_INPUT", source, message);
}

/**
 * The store writes of one post's reports (or one spool file's) from the task `range` covers.
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
  return reports.map(({ index, kind, payload }): StoreReport => {
    if (!inTask(index)) throw refuse("A report's index is outside this task's range.");
    if (seen.has(index)) throw refuse("A post carries two reports for the same index.");
    seen.add(index);
    if (kind === "error") {
      try {
        return { index, kind, value: strictUtf8.decode(payload) };
      } catch {
        throw refuse("An error report is not UTF-8 text.");
      }
    }
    if (!isPickle(payload)) throw refuse("A result is not a pickle of protocol 2 to 5.");
    return { index, kind: "result", value: payload };
  });
}
