import { describe, expect, it } from "vitest";
import { logCutMark, MAX_LOG_BYTES } from "../store.js";
import { decodeReports, encodeReports } from "./frames.js";
import { reportWrites, tailOfLog } from "./report-writes.js";

const text = (value: string) => new TextEncoder().encode(value);
const bytesOf = (value: string) => text(value).byteLength;
const pickle = (n: number) => new Uint8Array([0x80, 4, 0x4b, n, 0x2e]);

describe("tailOfLog", () => {
  it("keeps a log of up to MAX_LOG_BYTES whole", () => {
    const ascii = "a".repeat(MAX_LOG_BYTES);
    expect(tailOfLog(ascii)).toBe(ascii);
    const wide = "✓".repeat(MAX_LOG_BYTES / 4);
    expect(tailOfLog(wide)).toBe(wide);
    expect(tailOfLog("")).toBe("");
  });

  it("keeps the tail of a longer log after a mark that says how much was cut", () => {
    const log = `${"early line\n".repeat(10_000)}the last line\n`;
    const cut = tailOfLog(log);
    expect(bytesOf(cut)).toBeLessThanOrEqual(MAX_LOG_BYTES);
    expect(bytesOf(cut)).toBeGreaterThan(MAX_LOG_BYTES - 8);
    const kept = cut.slice(cut.indexOf("\n") + 1);
    expect(log.endsWith(kept)).toBe(true);
    expect(cut).toBe(logCutMark(bytesOf(log) - bytesOf(kept)) + kept);
    expect(cut.startsWith("[sheepdog: ")).toBe(true);
  });

  it("never cuts inside a character", () => {
    for (const piece of ["é", "✓", "🐑"]) {
      for (let extra = 1; extra <= 4; extra++) {
        const log = "x".repeat(extra) + piece.repeat(MAX_LOG_BYTES);
        const cut = tailOfLog(log);
        expect(bytesOf(cut)).toBeLessThanOrEqual(MAX_LOG_BYTES);
        expect(bytesOf(cut)).toBeGreaterThan(MAX_LOG_BYTES - 8);
        const kept = cut.slice(cut.indexOf("\n") + 1);
        expect(kept).not.toContain("\uFFFD");
        expect(kept).toBe(piece.repeat(kept.length / piece.length));
        expect(cut).toBe(logCutMark(bytesOf(log) - bytesOf(kept)) + kept);
      }
    }
  });

  it("counts the mark in the bytes it keeps", () => {
    expect(tailOfLog("0123456789".repeat(4), 30)).toBe("[sheepdog: 35 bytes cut]\n56789");
  });
});

describe("reportWrites", () => {
  it("gives each write the facts of its report, and none to a report without", () => {
    const facts = { startedAt: 10, endedAt: 20.5, host: "n1", peakMemoryBytes: 4096, attempt: 1 };
    const reports = decodeReports(
      new Uint8Array(
        encodeReports([
          { index: 3, kind: "result", payload: pickle(1), ...facts, log: "out\n" },
          { index: 4, kind: "error", payload: text("Traceback"), host: "n2" },
          { index: 5, kind: "result", payload: pickle(2) },
        ]),
      ),
    );
    // Plain copies: the writes are class instances (see reportWrites), with exactly these keys.
    const writes = reportWrites(reports, { first: 3, count: 3 });
    expect(writes.map((write) => ({ ...write }))).toStrictEqual([
      { index: 3, kind: "result", value: pickle(1), facts: { ...facts, log: "out\n" } },
      { index: 4, kind: "error", value: "Traceback", facts: { host: "n2" } },
      { index: 5, kind: "result", value: pickle(2) },
    ]);
  });

  it("makes its writes, and decodeReports its reports, without object literals", () => {
    // V8 moves every later object of a literal to the old generation once a post's thousands
    // are all found alive by a young-generation collection (see DecodedReport in frames.ts).
    const reports = decodeReports(
      new Uint8Array(
        encodeReports([
          { index: 0, kind: "result", payload: pickle(1), host: "n1" },
          { index: 1, kind: "error", payload: text("Traceback") },
        ]),
      ),
    );
    const writes = reportWrites(reports, { first: 0, count: 2 });
    for (const made of [...reports, ...writes]) {
      expect(Object.getPrototypeOf(made)).not.toBe(Object.prototype);
    }
  });

  it("cuts a log over MAX_LOG_BYTES to its tail, and keeps one at the limit whole", () => {
    const atLimit = `${"a".repeat(MAX_LOG_BYTES - 1)}\n`;
    const over = `${"b".repeat(MAX_LOG_BYTES)}the end\n`;
    const reports = decodeReports(
      new Uint8Array(
        encodeReports([
          { index: 0, kind: "result", payload: pickle(1), log: atLimit },
          { index: 1, kind: "error", payload: text("Traceback"), log: over },
        ]),
      ),
    );
    const [first, second] = reportWrites(reports, { first: 0, count: 2 });
    expect(first?.facts?.log).toBe(atLimit);
    const cut = second?.facts?.log ?? "";
    expect(bytesOf(cut)).toBeLessThanOrEqual(MAX_LOG_BYTES);
    expect(bytesOf(cut)).toBeGreaterThan(MAX_LOG_BYTES - 8);
    const kept = cut.slice(cut.indexOf("\n") + 1);
    expect(kept.endsWith("bbbthe end\n")).toBe(true);
    expect(cut).toBe(logCutMark(bytesOf(over) - bytesOf(kept)) + kept);
  });
});
