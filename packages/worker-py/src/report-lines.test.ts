import { describe, expect, it } from "vitest";
import { parseReportLine, parseReportLines } from "./report-lines.js";

const b64 = (bytes: number[]) => Buffer.from(bytes).toString("base64");

describe("parseReportLine", () => {
  it("reads results and errors", () => {
    expect(parseReportLine(`SHEEPDOG-REPORT v1 12 3 result ${b64([0x80, 4, 0x2e])}`)).toEqual({
      request: 12,
      index: 3,
      kind: "result",
      payload: new Uint8Array([0x80, 4, 0x2e]),
    });
    expect(parseReportLine("SHEEPDOG-REPORT v1 1 0 error ")).toEqual({
      request: 1,
      index: 0,
      kind: "error",
      payload: new Uint8Array(),
    });
  });

  it("finds a report after other text on the line, and tolerates CRLF", () => {
    const line = `partial print SHEEPDOG-REPORT v1 2 5 result ${b64([1, 2, 3])}\r`;
    expect(parseReportLine(line)?.payload).toEqual(new Uint8Array([1, 2, 3]));
  });

  it("ignores other and damaged lines", () => {
    for (const line of [
      "",
      "hello",
      "SHEEPDOG-REPORT v2 1 0 result AAAA",
      "SHEEPDOG-REPORT v1 1 0 maybe AAAA",
      "SHEEPDOG-REPORT v1 x 0 result AAAA",
      "SHEEPDOG-REPORT v1 1 0 result AAA",
      "SHEEPDOG-REPORT v1 1 0 result AA*A",
      "SHEEPDOG-REPORT v1 1 0 result",
      "SHEEPDOG-REPORT v1 1 0 result AAAA extra",
    ]) {
      expect(parseReportLine(line)).toBeUndefined();
    }
  });
});

describe("parseReportLines", () => {
  it("reads every report of an output file in order", () => {
    const text = [
      "user output",
      `SHEEPDOG-REPORT v1 4 0 result ${b64([9])}`,
      "more output",
      `SHEEPDOG-REPORT v1 4 1 error ${b64([0x41])}`,
      "",
    ].join("\n");
    expect(parseReportLines(text).map((r) => [r.index, r.kind, [...r.payload]])).toEqual([
      [0, "result", [9]],
      [1, "error", [0x41]],
    ]);
  });
});
