import { usageError } from "./settings.js";

/** The command line's exit codes. */
export const exitCodes = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** The request id a command names (its second word), or a usage error. */
export function requestId(positionals: string[], command: string): number {
  const text = positionals[1];
  if (text === undefined || !/^[1-9]\d*$/.test(text)) {
    throw usageError(
      `"sheepdog ${command}" needs a request id (a positive whole number), as "sheepdog requests" lists them.`,
    );
  }
  return Number(text);
}

/** Writes a line; nothing once the reader has gone (`sheepdog results 1 | head -1`). */
export function write(stream: NodeJS.WritableStream, text: string): void {
  if ((stream as { destroyed?: boolean }).destroyed) return;
  stream.write(text.endsWith("\n") ? text : `${text}\n`);
}

/** Rows as a table of left-aligned columns under a header. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** A time as `YYYY-MM-DD HH:MM:SS` (UTC). */
export function timeText(at: number): string {
  return new Date(at).toISOString().slice(0, 19).replace("T", " ");
}
