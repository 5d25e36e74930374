/** The job id in `sbatch --parsable`'s answer: `123`, or `123;cluster` on a federation. */
export function parseSbatchJobId(stdout: string): string | undefined {
  for (const line of stdout.split("\n")) {
    const match = /^\s*(\d+)(?:;\S*)?\s*$/.exec(line);
    if (match) return match[1];
  }
  return undefined;
}

/** `MaxArraySize` from `scontrol show config`, or `undefined` when the text does not say. */
export function parseMaxArraySize(config: string): number | undefined {
  const match = /^\s*MaxArraySize\s*=\s*(\d+)\s*$/m.exec(config);
  return match ? Number(match[1]) : undefined;
}

/** Whether `scontrol show config` says accounting goes to slurmdbd (so `sacct` answers). */
export function parseAccounting(config: string): boolean {
  const match = /^\s*AccountingStorageType\s*=\s*(\S+)\s*$/m.exec(config);
  return match?.[1] === "accounting_storage/slurmdbd";
}

/** One array task as `squeue` lists it. */
export interface QueueEntry {
  /** The array job's id (`%F`). */
  jobId: string;
  /** The array index (`%K`). */
  index: number;
  /** `PENDING`, `RUNNING`, ... (`%T`). */
  state: string;
  /** The node it runs on, or "" (`%N`). */
  node: string;
  /** Why it waits, or `None` (`%r`). */
  reason: string;
}

/** The `squeue -o` format that {@link parseSqueue} reads. */
export const squeueFormat = "%F|%K|%T|%N|%r";

/** Reads `squeue -h -r -o '%F|%K|%T|%N|%r'`; lines it cannot read are skipped. */
export function parseSqueue(text: string): QueueEntry[] {
  const entries: QueueEntry[] = [];
  for (const line of text.split("\n")) {
    const [jobId, index, state, node, ...reason] = line.trim().split("|");
    if (!jobId || !/^\d+$/.test(jobId) || !index || !/^\d+$/.test(index) || !state) continue;
    entries.push({
      jobId,
      index: Number(index),
      state,
      node: node ?? "",
      reason: reason.join("|"),
    });
  }
  return entries;
}

/** How one array task ended, as `sacct` or `scontrol show job` knows it. */
export interface EndRecord {
  jobId: string;
  index: number;
  /** Slurm's state, without `by <uid>`: `COMPLETED`, `TIMEOUT`, `CANCELLED`, ... */
  state: string;
  /** The uid that cancelled it, when Slurm says (`CANCELLED by 1000`). */
  cancelledBy?: string;
  /** The batch script's exit code and the signal that ended it (`ExitCode=2:0`, `0:9`). */
  exitCode: number;
  signal: number;
  /** Peak resident memory of its batch step, in bytes, when accounted. */
  maxRssBytes?: number;
  /** The memory it asked for (`--mem`, or the partition's default), in bytes, when accounted. */
  reqMemBytes?: number;
  /** Slurm's reason, when it gives one other than `None`. */
  reason?: string;
  jobName?: string;
}

/** The `sacct --format` that {@link parseSacct} reads. */
export const sacctFormat = "JobID,JobName,State,ExitCode,MaxRSS,ReqMem";

/** Reads sacct's sizes (`1234K`, `2.50M`, `0`): binary multiples. */
export function parseSacctBytes(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)([KMGTP]?)$/i.exec(text.trim());
  if (!match) return undefined;
  const power = " KMGTP".indexOf((match[2] || " ").toUpperCase());
  return Math.round(Number(match[1]) * 1024 ** Math.max(0, power));
}

function exitParts(text: string | undefined): { exitCode: number; signal: number } {
  const match = /^(\d+):(\d+)$/.exec(text?.trim() ?? "");
  return { exitCode: Number(match?.[1] ?? 0), signal: Number(match?.[2] ?? 0) };
}

function splitState(text: string): { state: string; cancelledBy?: string } {
  const match = /^(\S+)(?:\s+by\s+(\S+))?/.exec(text.trim());
  return {
    state: match?.[1] ?? text.trim(),
    ...(match?.[2] !== undefined && { cancelledBy: match[2] }),
  };
}

/**
 * Reads `sacct -n -P -j <ids> --format=JobID,JobName,State,ExitCode,MaxRSS,ReqMem`: one record per
 * array task (`123_4`), with the MaxRSS of its `.batch` step, and the batch step's exit code
 * and signal when the allocation's say nothing (`CANCELLED 0:0`, its batch `0:15`). Tasks
 * still pending as a range (`123_[5-9]`) and other steps are skipped.
 */
export function parseSacct(text: string): EndRecord[] {
  const records = new Map<string, EndRecord>();
  const batches = new Map<string, { exitCode: number; signal: number; maxRss?: number }>();
  for (const line of text.split("\n")) {
    const [id, jobName, state, exit, maxRss, reqMem] = line.trim().split("|");
    const match = /^(\d+)_(\d+)(?:\.(\w+))?$/.exec(id ?? "");
    if (!match || state === undefined) continue;
    const key = `${match[1]}_${match[2]}`;
    if (match[3] === "batch") {
      const bytes = parseSacctBytes(maxRss ?? "");
      batches.set(key, { ...exitParts(exit), ...(bytes !== undefined && { maxRss: bytes }) });
    }
    if (match[3] !== undefined) continue;
    const reqMemBytes = parseSacctBytes((reqMem ?? "").replace(/[nc]$/, ""));
    records.set(key, {
      jobId: match[1] ?? "",
      index: Number(match[2]),
      ...splitState(state),
      ...exitParts(exit),
      ...(jobName ? { jobName } : {}),
      ...(reqMemBytes ? { reqMemBytes } : {}),
    });
  }
  for (const [key, record] of records) {
    const batch = batches.get(key);
    if (batch?.maxRss !== undefined) record.maxRssBytes = batch.maxRss;
    // A cancelled or timed-out task's allocation says 0:0; its batch step, how it ended.
    if (batch && record.state !== "COMPLETED" && record.exitCode === 0 && record.signal === 0) {
      record.exitCode = batch.exitCode;
      record.signal = batch.signal;
    }
  }
  return [...records.values()];
}

/** The `key=value` fields of one line of `scontrol -o show job`. */
function scontrolFields(line: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const match of line.matchAll(/(?:^|\s)([A-Za-z:/]+)=(\S*)/g)) {
    if (match[1] && !fields.has(match[1])) fields.set(match[1], match[2] ?? "");
  }
  return fields;
}

/**
 * Reads `scontrol -o show job <array job>`: one line per array task that Slurm still holds
 * (finished ones for `MinJobAge`), pending ranges (`ArrayTaskId=5-9`) skipped.
 */
export function parseScontrolJobs(text: string): EndRecord[] {
  const records: EndRecord[] = [];
  for (const line of text.split("\n")) {
    const fields = scontrolFields(line);
    const jobId = fields.get("ArrayJobId");
    const index = fields.get("ArrayTaskId");
    const state = fields.get("JobState");
    if (!jobId || !index || !/^\d+$/.test(index) || !state) continue;
    const reason = fields.get("Reason");
    const jobName = fields.get("JobName");
    records.push({
      jobId,
      index: Number(index),
      state,
      ...exitParts(fields.get("ExitCode")),
      ...(reason && reason !== "None" ? { reason } : {}),
      ...(jobName ? { jobName } : {}),
    });
  }
  return records;
}

/** Slurm's states of a task that will not run again. */
export const finalStates = new Set([
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMEOUT",
  "NODE_FAIL",
  "OUT_OF_MEMORY",
  "PREEMPTED",
  "BOOT_FAIL",
  "DEADLINE",
  "REVOKED",
  "SPECIAL_EXIT",
]);

/** States in which a task waits to start (or to start again). */
export const waitingStates = new Set([
  "PENDING",
  "CONFIGURING",
  "REQUEUED",
  "REQUEUE_FED",
  "REQUEUE_HOLD",
  "RESV_DEL_HOLD",
]);

/**
 * squeue's reasons for a pending task that Slurm will not start without someone's help: the
 * job asks for what the partition or account cannot give, or its launch failed.
 */
export const stuckReasons =
  /launch failed|BadConstraints|InvalidAccount|InvalidQOS|PartitionConfig|PartitionNodeLimit|PartitionTimeLimit|DependencyNeverSatisfied|JobHeldAdmin/i;
