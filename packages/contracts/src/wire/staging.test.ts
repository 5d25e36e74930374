import { describe, expect, it } from "vitest";
import { SheepdogError } from "../errors.js";
import { hashToken } from "../token.js";
import type { TaskHeader } from "../wire.js";
import { WIRE_VERSION } from "../wire.js";
import { macKey } from "./auth.js";
import { decodeFrames, encodeFrames } from "./frames.js";
import { reportWrites } from "./report-writes.js";
import { decodeSpoolFile, encodePack, encodeSpoolFile, readPackedTask } from "./staging.js";

const text = (value: string) => new TextEncoder().encode(value);
const key = macKey(hashToken("the request's token"));
const otherKey = macKey(hashToken("another request's token"));
const pickle = (n: number) => new Uint8Array([0x80, 4, 0x4b, n, 0x2e]);

function flip(bytes: Uint8Array, at: number): void {
  bytes[at] = (bytes[at] as number) ^ 1;
}

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (SheepdogError.isInstance(error)) return error.message;
    throw error;
  }
  throw new Error("expected a SheepdogError");
}

const taskHeader = (task: number, first: number, count: number): TaskHeader => ({
  version: WIRE_VERSION,
  request: 7,
  task,
  first,
  count,
});

function pack() {
  return encodePack(key, {
    request: 7,
    taskOffset: 0,
    func: text('{"name":"f","source":"def f(x): return x"}'),
    ns: new Uint8Array(),
    tasks: [
      { header: taskHeader(1, 0, 2), args: [pickle(1), pickle(2)] },
      { header: taskHeader(2, 2, 1), args: [pickle(3)] },
    ],
  });
}

describe("packs", () => {
  it("give each task its header, the function, the namespace and its arguments", () => {
    const task = readPackedTask(key, pack(), 7, 2);
    expect(task.header).toEqual(taskHeader(2, 2, 1));
    expect(new TextDecoder().decode(task.func)).toContain("def f");
    expect(task.ns.byteLength).toBe(0);
    expect(task.args.map((a) => [...a])).toEqual([[...pickle(3)]]);
    expect(readPackedTask(key, pack(), 7, 1).args).toHaveLength(2);
  });

  it("are refused under another key, for another request, or for a task they lack", () => {
    expect(refusal(() => readPackedTask(otherKey, pack(), 7, 1))).toContain("not signed");
    expect(refusal(() => readPackedTask(key, pack(), 8, 1))).toContain("not one of request 8");
    expect(refusal(() => readPackedTask(key, pack(), 7, 3))).toContain("no task 3");
  });

  it("refuse a section changed by one byte, or one moved to another task's place", () => {
    const changed = pack();
    flip(changed, changed.byteLength - 2);
    expect(refusal(() => readPackedTask(key, changed, 7, 2))).toContain("task 2");
    const [header, common, one, two] = decodeFrames(pack());
    const parsed = JSON.parse(new TextDecoder().decode(header));
    // Task 2's place points at task 1's bytes, with task 1's MAC.
    parsed.sections[2] = parsed.sections[1];
    const swapped = encodeFrames([
      text(JSON.stringify(parsed)),
      common as Uint8Array,
      one as Uint8Array,
      two as Uint8Array,
    ]);
    expect(refusal(() => readPackedTask(key, swapped, 7, 2))).toContain("not signed");
  });
});

describe("spool files", () => {
  const reports = [
    { index: 3, kind: "result" as const, payload: pickle(9) },
    { index: 4, kind: "error" as const, payload: text("Traceback: ValueError") },
  ];

  it("carry a task's reports under their name, checked by the request's key", () => {
    const { name, bytes } = encodeSpoolFile(key, { request: 7, task: 2, reports });
    expect(name).toMatch(/^2-[A-Za-z0-9_-]{22}\.reports$/);
    const spooled = decodeSpoolFile(key, 7, name, new Uint8Array(bytes));
    expect(spooled.task).toBe(2);
    expect(reportWrites(spooled.reports, { first: 3, count: 2 })).toEqual([
      { index: 3, kind: "result", value: pickle(9) },
      { index: 4, kind: "error", value: "Traceback: ValueError" },
    ]);
  });

  it("are refused when forged, changed, renamed or of another request", () => {
    const { name, bytes } = encodeSpoolFile(key, { request: 7, task: 2, reports });
    const forged = encodeSpoolFile(otherKey, { request: 7, task: 2, reports });
    expect(refusal(() => decodeSpoolFile(key, 7, forged.name, forged.bytes))).toContain(
      "not signed",
    );
    const changed = bytes.slice();
    flip(changed, changed.byteLength - 3);
    expect(refusal(() => decodeSpoolFile(key, 7, name, changed))).toContain("not signed");
    const renamed = name.replace(/^2-/, "3-");
    expect(refusal(() => decodeSpoolFile(key, 7, renamed, bytes))).toContain("own name");
    expect(refusal(() => decodeSpoolFile(key, 8, name, bytes))).toContain("request 8");
    expect(refusal(() => decodeSpoolFile(key, 7, "notes.txt", bytes))).toContain("not the name");
  });

  it("hold reports that the task's range still decides", () => {
    const { name, bytes } = encodeSpoolFile(key, { request: 7, task: 2, reports });
    const spooled = decodeSpoolFile(key, 7, name, new Uint8Array(bytes));
    expect(refusal(() => reportWrites(spooled.reports, { first: 0, count: 2 }))).toContain(
      "outside this task's range",
    );
  });
});
