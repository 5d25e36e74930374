import type { DoctorReport, DoctorStep } from "@sheepdog/core";
import { doctor } from "@sheepdog/core";
import { settings, usageError } from "./settings.js";

/** What `sheepdog doctor` needs of the command line's streams and flags. */
export interface DoctorIo {
  env: Record<string, string | undefined>;
  cwd: string;
  stdout: NodeJS.WritableStream;
  signal: AbortSignal;
}

const marks: Record<DoctorStep["status"], string> = { ok: "✓", failed: "✗", skipped: "-" };

/** A step as lines: its mark, name and detail, then what to change (continuations indented). */
export function stepText(step: DoctorStep): string {
  const indent = (text: string) => text.replace(/\n/g, "\n    ");
  const skipped = step.status === "skipped" ? "skipped: " : "";
  const lines = [`${marks[step.status]} ${step.name}: ${skipped}${indent(step.detail)}`];
  if (step.fix) lines.push(`    fix: ${indent(step.fix)}`);
  return `${lines.join("\n")}\n`;
}

/** The last line: whether a map would work. */
export function verdictText(report: DoctorReport): string {
  return report.ok
    ? "A map with this configuration would work.\n"
    : "A map with this configuration would not work: change what the first ✗ above says.\n";
}

/** `--timeout`: seconds, a positive whole number. */
function timeoutOf(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  if (!/^[1-9]\d*$/.test(text)) {
    throw usageError(`--timeout takes a whole number of seconds, not "${text}".`);
  }
  return Number(text);
}

/**
 * `sheepdog doctor`: checks each step a map needs with the configuration in force and prints
 * one line per step as it ends (with `--json`, the report at the end). Resolves with whether
 * a map would work.
 */
export async function doctorCommand(
  io: DoctorIo,
  values: Record<string, unknown>,
): Promise<boolean> {
  const timeoutSeconds = timeoutOf(values.timeout);
  const { config } = await settings(values, io.env, io.cwd);
  const json = values.json === true;
  const report = await doctor(config, {
    ...(timeoutSeconds !== undefined && { timeoutSeconds }),
    signal: io.signal,
    ...(!json && { onStep: (step: DoctorStep) => io.stdout.write(stepText(step)) }),
  });
  io.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : verdictText(report));
  return report.ok;
}
