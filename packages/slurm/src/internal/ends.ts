import type { DeathKind, TaskEnd } from "@sheepdog/contracts";
import { signalName } from "@sheepdog/contracts";
import type { EndRecord } from "./parse.js";

/** What each of Slurm's final states means on every scheduler, and in words. */
const stateMeanings: Record<string, { kind: DeathKind; words: string }> = {
  TIMEOUT: { kind: "time-limit", words: "exceeded its time limit (--time)" },
  DEADLINE: { kind: "time-limit", words: "reached its deadline (--deadline)" },
  OUT_OF_MEMORY: { kind: "out-of-memory", words: "exceeded its memory limit (--mem)" },
  NODE_FAIL: { kind: "node-failure", words: "its node failed" },
  BOOT_FAIL: { kind: "node-failure", words: "its node failed to boot" },
  PREEMPTED: { kind: "preempted", words: "was preempted" },
  CANCELLED: { kind: "cancelled", words: "was cancelled" },
  REVOKED: { kind: "cancelled", words: "was revoked (a federated job that ran elsewhere)" },
};

/**
 * Whether a task killed by SIGKILL was over its memory request: without cgroups, Slurm's
 * accounting kills such a task itself (`OverMemoryKill`) and records it as `FAILED 0:9`, not
 * `OUT_OF_MEMORY`; its peak resident memory then reaches what it asked for.
 */
function killedOverMemory(record: EndRecord, signal: number | null): boolean {
  const { maxRssBytes, reqMemBytes } = record;
  if (signal !== 9 || maxRssBytes === undefined || reqMemBytes === undefined) return false;
  return maxRssBytes >= reqMemBytes * 0.9;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 ** 2).toFixed(0)} MiB`;
}

/** Exit statuses of `/bin/sh` when it cannot run the interpreter at all. */
const cannotStart: Record<number, string> = {
  126: "the interpreter is not executable",
  127: "the interpreter was not found",
};

function describeSignal(signal: number): string {
  const name = signalName(signal);
  return name ? `killed by signal ${signal} (${name})` : `killed by signal ${signal}`;
}

/**
 * The signal that ended a task: Slurm's own (`ExitCode=0:9`), or an exit status above 128
 * (the shell convention for a child killed by a signal), else `null`.
 */
function signalOf(record: EndRecord): number | null {
  if (record.signal > 0) return record.signal;
  const { exitCode } = record;
  return exitCode > 128 && exitCode <= 128 + 64 ? exitCode - 128 : null;
}

function cancelledWords(record: EndRecord): string {
  return record.cancelledBy === undefined
    ? "was cancelled (scancel)"
    : `was cancelled by uid ${record.cancelledBy} (scancel)`;
}

/** How a task that Slurm holds in a final state ended, with a kind every scheduler shares. */
export function describeEnd(record: EndRecord): TaskEnd {
  const signal = signalOf(record);
  const exitCode = signal === null ? record.exitCode : null;
  const base = {
    exitCode,
    signal,
    schedulerState: record.cancelledBy ? `${record.state} by ${record.cancelledBy}` : record.state,
    ...(record.maxRssBytes !== undefined && { maxRssBytes: record.maxRssBytes }),
  };
  const meaning = stateMeanings[record.state];
  const how = signal !== null ? describeSignal(signal) : `exit status ${record.exitCode}`;
  const said = `Slurm: ${base.schedulerState}, ExitCode ${record.exitCode}:${record.signal}${record.reason ? `, ${record.reason}` : ""}`;
  if (meaning) {
    const words = record.state === "CANCELLED" ? cancelledWords(record) : meaning.words;
    return { kind: meaning.kind, ...base, reason: `${words}; ${how} (${said})` };
  }
  const notStarted = signal === null ? cannotStart[record.exitCode] : undefined;
  if (notStarted) {
    return { kind: "never-started", ...base, reason: `never ran: ${notStarted} (${said})` };
  }
  if (killedOverMemory(record, signal)) {
    const { maxRssBytes = 0, reqMemBytes = 0 } = record;
    return {
      kind: "out-of-memory",
      ...base,
      reason: `exceeded its memory limit (--mem=${mib(reqMemBytes)}, peak ${mib(maxRssBytes)}); ${how} (${said})`,
    };
  }
  if (signal !== null)
    return { kind: "signal", ...base, reason: `${describeSignal(signal)} (${said})` };
  return { kind: "exit", ...base, reason: `exited with status ${record.exitCode} (${said})` };
}
