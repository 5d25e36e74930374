import { SheepdogError } from "../errors.js";
import { source } from "../internal/source.js";
import type { TaskHeader } from "../wire.js";
import { WIRE_VERSION } from "../wire.js";
import type { MacKey } from "./auth.js";
import { macMatches, newNonce, spoolMac, stagedMac } from "./auth.js";
import type { ReportFrame, TaskFrames } from "./frames.js";
import { decodeFrames, decodeReports, encodeFrames, encodeReports } from "./frames.js";

/*
 * What a detached request leaves on the cluster (see `WorkerLaunch.stagedTasks` and
 * `spoolDir` in `wire.ts`): its tasks, staged before the job is submitted so that a task can run
 * while the client is away, and the reports its workers could not deliver, spooled one file per
 * post until a client collects them. Both are signed under the request's key, so a worker runs
 * only what its client staged and a client stores only what its workers spooled.
 *
 * A pack (one per job: the first, and each retry's) is frames `[PackHeader, section...]`: a
 * 4-byte big-endian length and a UTF-8 JSON {@link PackHeader} of that length, then each
 * section with its own length before it (a worker seeks to the two it needs). Section 0 is the common part, frames
 * `[func, ns]`; section `i` (from 1) is the request's task `taskOffset + i`, frames
 * `[TaskHeader, args...]`. Each section's MAC is `stagedMac(key, request, label, section)` with
 * the label `common` or `task <n>`, so that no section can stand in for another.
 *
 * A spool file is named `<task>-<nonce>.reports` and holds frames `[SpoolHeader, body]`, where
 * `body` is a report post's body (frames `[ReportHeader, payload...]`) and the header's `mac` is
 * `spoolMac(key, { request, task, nonce }, body)`. A worker writes it under another name and
 * renames it into place, so a reader never sees part of one.
 */

/** The JSON header of a pack: where each section is (from the end of the header) and its MAC. */
export interface PackHeader {
  version: typeof WIRE_VERSION;
  request: number;
  /** Section `i` (from 1) is the request's task `taskOffset + i`. */
  taskOffset: number;
  /**
   * `[offset, length, mac]` of each section: its first byte is `offset` bytes after the end of
   * the header (past the section's own length).
   */
  sections: [number, number, string][];
}

/** The JSON header of a spool file. */
export interface SpoolHeader {
  version: typeof WIRE_VERSION;
  request: number;
  task: number;
  /** 22 base64url characters, new for each file; also in the file's name. */
  nonce: string;
  mac: string;
}

/** What a spool file carries, once its MAC is checked. */
export interface SpooledReports {
  task: number;
  nonce: string;
  reports: ReportFrame[];
}

/** A spool file's name: `<task>-<nonce>.reports`; group 1 is the task, group 2 the nonce. */
export const SPOOL_FILE_PATTERN = /^([1-9][0-9]{0,14})-([A-Za-z0-9_-]{22})\.reports$/;

const utf8 = new TextEncoder();

function stagingError(message: string): SheepdogError {
  return new SheepdogError("INVALID_INPUT", source, message);
}

/** The task's label in its section's MAC. */
function taskLabel(task: number): string {
  return `task ${task}`;
}

/**
 * A pack of one job's tasks: `tasks[i]` is the request's task `taskOffset + 1 + i` (its header
 * says which arguments it covers, as a task fetch's does).
 *
 * @example
 * ```ts
 * const pack = encodePack(macKey(info.tokenHash), { request, taskOffset: 0, func, ns, tasks });
 * ```
 */
export function encodePack(
  key: MacKey,
  pack: {
    request: number;
    taskOffset: number;
    func: Uint8Array;
    ns: Uint8Array;
    tasks: readonly { header: TaskHeader; args: readonly Uint8Array[] }[];
  },
): Uint8Array {
  const sections = [encodeFrames([pack.func, pack.ns])];
  const labels = ["common"];
  for (const [i, task] of pack.tasks.entries()) {
    if (task.header.task !== pack.taskOffset + 1 + i || task.args.length !== task.header.count) {
      throw stagingError(
        `Staged task ${i + 1} after offset ${pack.taskOffset} has the header of task ${task.header.task} with ${task.args.length} of ${task.header.count} argument tuples.`,
      );
    }
    sections.push(encodeFrames([utf8.encode(JSON.stringify(task.header)), ...task.args]));
    labels.push(taskLabel(task.header.task));
  }
  let offset = 0;
  const header: PackHeader = {
    version: WIRE_VERSION,
    request: pack.request,
    taskOffset: pack.taskOffset,
    sections: sections.map((section, i) => {
      offset += 4;
      const entry: [number, number, string] = [
        offset,
        section.byteLength,
        stagedMac(key, pack.request, labels[i] as string, section),
      ];
      offset += section.byteLength;
      return entry;
    }),
  };
  // A pack of its own bytes, not a slice of a shared pool.
  return new Uint8Array(encodeFrames([utf8.encode(JSON.stringify(header)), ...sections]));
}

/**
 * One task of a pack, its sections' MACs checked: as a task fetch would answer it. Throws a
 * `SheepdogError` (`INVALID_INPUT`) for a pack that is malformed, of another request, without
 * the task, or with a MAC that is not the request's.
 */
export function readPackedTask(
  key: MacKey,
  pack: Uint8Array,
  request: number,
  task: number,
): TaskFrames {
  const [headerBytes] = decodeFrames(pack.subarray(0, 4 + readLength(pack)));
  const header = JSON.parse(new TextDecoder().decode(headerBytes)) as PackHeader;
  if (header.version !== WIRE_VERSION || header.request !== request) {
    throw stagingError(`The pack is not one of request ${request}.`);
  }
  const start = 4 + readLength(pack);
  const section = (i: number, label: string): Uint8Array => {
    const entry = header.sections[i];
    if (entry === undefined) throw stagingError(`The pack has no ${label}.`);
    const [offset, length, mac] = entry;
    const bytes = pack.subarray(start + offset, start + offset + length);
    if (!macMatches(stagedMac(key, request, label, bytes), mac)) {
      throw stagingError(`The pack's ${label} is not signed with request ${request}'s key.`);
    }
    return bytes;
  };
  const [func, ns] = decodeFrames(section(0, "common"));
  const [taskHeader, ...args] = decodeFrames(section(task - header.taskOffset, taskLabel(task)));
  const parsed = JSON.parse(new TextDecoder().decode(taskHeader)) as TaskHeader;
  return { header: parsed, func: func as Uint8Array, ns: ns as Uint8Array, args };
}

function readLength(bytes: Uint8Array): number {
  if (bytes.byteLength < 4) throw stagingError("The pack is too short for its header.");
  return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
}

/**
 * A spool file of reports from the request's task `task`, as a worker writes it, and its name.
 * For tests and benchmarks: the Python worker writes the real ones.
 */
export function encodeSpoolFile(
  key: MacKey,
  spool: { request: number; task: number; reports: readonly ReportFrame[]; nonce?: string },
): { name: string; bytes: Uint8Array } {
  const nonce = spool.nonce ?? newNonce();
  const body = encodeReports(spool.reports);
  const facts = { request: spool.request, task: spool.task, nonce };
  const header: SpoolHeader = { version: WIRE_VERSION, ...facts, mac: spoolMac(key, facts, body) };
  return {
    name: `${spool.task}-${nonce}.reports`,
    bytes: encodeFrames([utf8.encode(JSON.stringify(header)), body]),
  };
}

/**
 * The reports of a spool file, once its header names `request` and the file's name, and its
 * MAC is the request's. Throws a `SheepdogError` (`INVALID_INPUT`) saying what is wrong
 * otherwise: such a file was not written by one of the request's workers.
 */
export function decodeSpoolFile(
  key: MacKey,
  request: number,
  name: string,
  bytes: Uint8Array,
): SpooledReports {
  const named = SPOOL_FILE_PATTERN.exec(name);
  if (named === null) throw stagingError(`${name} is not the name of a spool file.`);
  const sections = decodeFrames(bytes);
  if (sections.length !== 2) throw stagingError(`${name} does not hold a header and a body.`);
  const header = parseSpoolHeader(sections[0] as Uint8Array, name);
  if (header.request !== request || header.task !== Number(named[1]) || header.nonce !== named[2]) {
    throw stagingError(`${name} is not a report of request ${request} under its own name.`);
  }
  const body = sections[1] as Uint8Array;
  const facts = { request, task: header.task, nonce: header.nonce };
  if (!macMatches(spoolMac(key, facts, body), header.mac)) {
    throw stagingError(`${name} is not signed with request ${request}'s key.`);
  }
  return { task: header.task, nonce: header.nonce, reports: decodeReports(body) };
}

function parseSpoolHeader(bytes: Uint8Array, name: string): SpoolHeader {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw stagingError(`${name} has no readable header.`);
  }
  const h = header as Partial<SpoolHeader> | null;
  if (
    typeof h !== "object" ||
    h === null ||
    h.version !== WIRE_VERSION ||
    !Number.isSafeInteger(h.request) ||
    !Number.isSafeInteger(h.task) ||
    typeof h.nonce !== "string" ||
    typeof h.mac !== "string"
  ) {
    throw stagingError(
      `${name}'s header does not have the fields of wire version ${WIRE_VERSION}.`,
    );
  }
  return h as SpoolHeader;
}
