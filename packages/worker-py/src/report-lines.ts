import type { RequestId } from "@sheepdog/contracts";
import { STDOUT_REPORT_PREFIX } from "@sheepdog/contracts";

/** One report as a worker printed it on stdout (see `STDOUT_REPORT_PREFIX`). */
export interface ReportLine {
  request: RequestId;
  /** The store index (0-based) of the argument tuple. */
  index: number;
  kind: "result" | "error";
  /** A result's pickle, or an error's UTF-8 traceback. */
  payload: Uint8Array;
}

const BODY = /^(\d{1,15}) (\d{1,15}) (result|error) ([A-Za-z0-9+/]*={0,2})\r?$/;

/**
 * The report on one line of a worker's stdout, or `undefined` when the line carries none.
 * The report may follow other text on the line (a function's `print` without a newline);
 * a line that starts a report but is damaged (truncated, bad base64) is not a report.
 */
export function parseReportLine(line: string): ReportLine | undefined {
  const start = line.lastIndexOf(STDOUT_REPORT_PREFIX);
  if (start < 0) return undefined;
  const match = BODY.exec(line.slice(start + STDOUT_REPORT_PREFIX.length));
  if (match === null) return undefined;
  const [, request, index, kind, base64] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
  ];
  if (base64.length % 4 !== 0) return undefined;
  return {
    request: Number(request),
    index: Number(index),
    kind: kind as "result" | "error",
    payload: new Uint8Array(Buffer.from(base64, "base64")),
  };
}

/** Every report in a worker's stdout (a job's output file), in order. */
export function parseReportLines(text: string): ReportLine[] {
  const reports: ReportLine[] = [];
  for (const line of text.split("\n")) {
    const report = parseReportLine(line);
    if (report !== undefined) reports.push(report);
  }
  return reports;
}
