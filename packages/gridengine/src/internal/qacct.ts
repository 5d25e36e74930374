import type { DeathKind, TaskEnd } from "@sheepdog/contracts";
import { signalName } from "@sheepdog/contracts";

/** One accounting record of `qacct -j`: one run of one task. */
export interface QacctRecord {
  jobId: string;
  /** The array task number, or `null` for a job that is not an array (`taskid undefined`). */
  taskId: number | null;
  /** qacct's `failed` code (0 when GridEngine saw no failure) and its text. */
  failedCode: number;
  failedText: string;
  /** qacct's `exit_status`. */
  exitStatus: number;
  /** Peak virtual memory in bytes (0 when never sampled). */
  maxvmemBytes: number;
  /** Wall clock seconds, or `null` when not printed. */
  wallclockSeconds: number | null;
  /** CPU seconds, or `null` when not printed. */
  cpuSeconds: number | null;
  /** The resources the job requested (`-l` of `category`), e.g. `{ h_rt: "2" }`. */
  requests: Record<string, string>;
  hostname: string | null;
  /** The job's name (`jobname`). */
  jobName: string | null;
}

const binaryUnits: Record<string, number> = {
  "": 1,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
  P: 1024 ** 5,
};

/**
 * Reads a size as qacct prints it (`624.914MB`, `7.844KB`, `0.000B`, `1.5G`, `123`): qacct
 * uses binary multiples (1 KB = 1024 B). Returns `null` for anything else.
 */
export function parseQacctBytes(text: string): number | null {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGTP]?)B?$/i.exec(text.trim());
  if (!match) return null;
  const unit = binaryUnits[(match[2] ?? "").toUpperCase()] ?? 1;
  return Math.round(Number(match[1]) * unit);
}

/**
 * Reads a GridEngine memory request (`400M`, `2G`, `1.5g`, `100000`): upper-case K/M/G are
 * binary (1024), lower-case k/m/g decimal (1000), as sge_types(1) defines them.
 */
export function parseMemoryRequest(text: string): number | null {
  const match = /^(\d+(?:\.\d+)?)([kKmMgGtT]?)$/.exec(text.trim());
  if (!match) return null;
  const suffix = match[2] ?? "";
  const power = { "": 0, k: 1, m: 2, g: 3, t: 4 }[suffix.toLowerCase()] ?? 0;
  const base = suffix !== "" && suffix === suffix.toUpperCase() ? 1024 : 1000;
  return Math.round(Number(match[1]) * base ** power);
}

/**
 * Reads a GridEngine time (`2`, `0:0:2`, `1:30:00`, `::30`, `13s`, `2.003s`) in seconds, or
 * `null` when it is not one.
 */
export function parseSeconds(text: string): number | null {
  const trimmed = text.trim().replace(/s$/, "");
  if (/^\d+(?:\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const parts = trimmed.split(":");
  if (parts.length !== 3 || !parts.every((part) => /^\d*$/.test(part))) return null;
  const [hours, minutes, seconds] = parts.map((part) => Number(part || "0")) as [
    number,
    number,
    number,
  ];
  return hours * 3600 + minutes * 60 + seconds;
}

/** The `-l` requests of qacct's `category` line (`-q all.q -l h_rt=2,h_vmem=400M`). */
function parseCategory(category: string): Record<string, string> {
  const requests: Record<string, string> = {};
  const tokens = category.trim().split(/\s+/);
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] !== "-l") continue;
    for (const pair of (tokens[i + 1] ?? "").split(",")) {
      const eq = pair.indexOf("=");
      if (eq > 0) requests[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return requests;
}

/**
 * Parses the output of `qacct -j <job>`: records separated by lines of `=`, each line a key
 * and its value. Records lacking a job number or exit status are skipped.
 */
export function parseQacct(text: string): QacctRecord[] {
  const records: QacctRecord[] = [];
  for (const chunk of text.split(/^={10,}\s*$/m)) {
    const fields = new Map<string, string>();
    for (const line of chunk.split("\n")) {
      const match = /^(\w+)\s+(.*?)\s*$/.exec(line);
      if (match?.[1] && !fields.has(match[1])) fields.set(match[1], match[2] ?? "");
    }
    const jobId = fields.get("jobnumber");
    const exit = /^(\d+)/.exec(fields.get("exit_status") ?? "");
    if (!jobId || !exit) continue;
    const task = fields.get("taskid") ?? "undefined";
    const failed = /^(\d+)\s*(?::\s*(.*))?$/.exec(fields.get("failed") ?? "0");
    const wallclock = fields.get("ru_wallclock");
    const cpu = fields.get("cpu");
    records.push({
      jobId,
      taskId: /^\d+$/.test(task) ? Number(task) : null,
      failedCode: failed ? Number(failed[1]) : 0,
      failedText: (failed?.[2] ?? "").trim(),
      exitStatus: Number(exit[1]),
      maxvmemBytes: parseQacctBytes(fields.get("maxvmem") ?? "") ?? 0,
      wallclockSeconds: wallclock === undefined ? null : parseSeconds(wallclock),
      cpuSeconds: cpu === undefined ? null : parseSeconds(cpu),
      requests: parseCategory(fields.get("category") ?? ""),
      hostname: fields.get("hostname") ?? null,
      jobName: fields.get("jobname") ?? null,
    });
  }
  return records;
}

/**
 * `failed` codes after which GridEngine runs the task again (24 migrating, 25 rescheduling):
 * such a record is not how the task ended.
 */
const rerunCodes = new Set([24, 25]);

/**
 * `failed` codes with which the job never ran (sge_status(5), "OK" = N): its exit status
 * means nothing.
 */
const neverRanCodes = new Set([
  1, 3, 4, 6, 7, 8, 9, 10, 11, 18, 19, 21, 26, 27, 28, 29, 31, 32, 33, 34, 35, 36, 38,
]);

const limitNames: Record<string, string> = {
  h_rt: "run-time limit",
  s_rt: "soft run-time limit",
  h_cpu: "CPU time limit",
  s_cpu: "soft CPU time limit",
  h_vmem: "memory limit",
  s_vmem: "soft memory limit",
};

/** Which of the job's limits it reached, judged by its usage; in order of likelihood. */
function limitsReached(record: QacctRecord): string[] {
  const reached: string[] = [];
  const { requests } = record;
  for (const name of ["h_vmem", "s_vmem"]) {
    const limit = requests[name] === undefined ? null : parseMemoryRequest(requests[name]);
    if (limit !== null && record.maxvmemBytes >= limit) reached.push(name);
  }
  for (const [name, used] of [
    ["h_rt", record.wallclockSeconds],
    ["s_rt", record.wallclockSeconds],
    ["h_cpu", record.cpuSeconds],
    ["s_cpu", record.cpuSeconds],
  ] as const) {
    const limit = requests[name] === undefined ? null : parseSeconds(requests[name]);
    // Accounting rounds and GridEngine checks limits every few seconds: allow a second.
    if (limit !== null && used !== null && used >= limit - 1) reached.push(name);
  }
  return reached;
}

/** What reaching limit `name` means on every scheduler. */
function limitKind(name: string | undefined): DeathKind {
  if (name === undefined) return "signal";
  return name.endsWith("vmem") ? "out-of-memory" : "time-limit";
}

function describeLimit(name: string, record: QacctRecord): string {
  return `exceeded its ${limitNames[name] ?? "limit"} (${name}=${record.requests[name]})`;
}

function describeSignal(signal: number): string {
  const name = signalName(signal);
  return name ? `killed by signal ${signal} (${name})` : `killed by signal ${signal}`;
}

/**
 * Turns the last accounting record of a task into how it ended, or `undefined` when the
 * record says GridEngine will run the task again.
 *
 * An exit status above 128 means death by signal `status - 128` (shell convention, and what
 * the shepherd records for a signal), so `exitCode` is then `null` and `signal` set.
 */
export function describeEnd(record: QacctRecord): TaskEnd | undefined {
  const code = record.failedCode;
  if (rerunCodes.has(code)) return undefined;
  const failed = code !== 0 ? { code, text: record.failedText } : undefined;
  const extra = {
    ...(failed ? { failed } : {}),
    ...(record.maxvmemBytes > 0 ? { maxvmemBytes: record.maxvmemBytes } : {}),
  };
  const failedNote = `(GridEngine: failed ${code}${record.failedText ? `, ${record.failedText}` : ""})`;

  if (neverRanCodes.has(code)) {
    return {
      kind: "never-started",
      exitCode: null,
      signal: null,
      ...extra,
      reason: `never ran: GridEngine failed ${code}${record.failedText ? ` (${record.failedText})` : ""}`,
    };
  }

  const status = record.exitStatus;
  const signal = status > 128 && status <= 128 + 64 ? status - 128 : null;
  const reached = limitsReached(record);

  if (code === 37) {
    // "qmaster enforced h_rt, h_cpu, or h_vmem limit": usage says which.
    const hard = reached.filter((name) => name.startsWith("h_"));
    const candidates = ["h_rt", "h_cpu", "h_vmem"].filter((name) => name in record.requests);
    const limit = hard[0] ?? (candidates.length === 1 ? candidates[0] : undefined);
    const what = limit
      ? describeLimit(limit, record)
      : "exceeded a hard limit (h_rt, h_cpu or h_vmem)";
    const how = signal !== null ? ` and was ${describeSignal(signal)}` : "";
    return {
      kind: limit ? limitKind(limit) : "signal",
      exitCode: signal === null ? status : null,
      signal,
      ...extra,
      reason: `${what}${how}`,
    };
  }

  if (signal !== null) {
    const limit = reached.find((name) =>
      signal === 9
        ? name.startsWith("h_")
        : (signal === 10 && name === "s_rt") ||
          (signal === 24 && (name === "s_cpu" || name === "h_cpu")),
    );
    const reason = limit
      ? `${describeLimit(limit, record)} and was ${describeSignal(signal)}`
      : describeSignal(signal);
    return {
      kind: limit ? limitKind(limit) : "signal",
      exitCode: null,
      signal,
      ...extra,
      reason: failed && !limit ? `${reason} ${failedNote}` : reason,
    };
  }

  let reason = `exited with status ${status}`;
  if (status !== 0) {
    const memory = ["h_vmem", "s_vmem"].find((name) => name in record.requests);
    if (memory) reason += ` (it ran under a memory limit, ${memory}=${record.requests[memory]})`;
  }
  if (failed) reason += ` ${failedNote}`;
  return { kind: "exit", exitCode: status, signal: null, ...extra, reason };
}
