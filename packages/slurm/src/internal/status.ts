import type { JobRef, TaskEnd, TaskState } from "@sheepdog/contracts";
import { readStderrTails, SheepdogError, shellQuote, withStderrTail } from "@sheepdog/contracts";
import type { Commands } from "./commands.js";
import { outputOf } from "./commands.js";
import { describeEnd } from "./ends.js";
import type { EndRecord, QueueEntry } from "./parse.js";
import {
  finalStates,
  parseSacct,
  parseScontrolJobs,
  parseSqueue,
  sacctFormat,
  squeueFormat,
  stuckReasons,
  waitingStates,
} from "./parse.js";
import { source } from "./source.js";

type Part = JobRef["parts"][number];

/** How long a task may be missing from sacct after it left squeue before scontrol is asked. */
const sacctLagMs = 5_000;

/** What the cluster says about accounting: asked once, from `scontrol show config`. */
export type AccountingReader = () => Promise<boolean>;

/** A task's state while `squeue` lists it, or `undefined` once it is in a final state. */
function liveState(entry: QueueEntry): TaskState | undefined {
  if (finalStates.has(entry.state)) return undefined;
  if (waitingStates.has(entry.state)) {
    return stuckReasons.test(entry.reason)
      ? { state: "queued", error: `Slurm holds it: ${entry.state} (${entry.reason})` }
      : { state: "queued" };
  }
  return { state: "running", ...(entry.node ? { host: entry.node } : {}) };
}

/**
 * Follows tasks through `squeue` (one call for every part of a job), then, for tasks that left
 * it, through `sacct` where accounting is configured, else `scontrol show job` (which keeps
 * finished jobs for `MinJobAge`); `sacct` lags behind the queue, so a task it does not know
 * yet is looked up with `scontrol` too. A task is `unknown` until one of them knows how it
 * ended (then `finished`, kept for good), and is no longer asked about after `endWaitMs`.
 */
export class TaskStatus {
  private readonly ended = new Map<string, TaskState>();
  private readonly missingSince = new Map<string, number>();

  constructor(
    private readonly commands: Commands,
    private readonly accounting: AccountingReader,
    private readonly endWaitMs: number,
  ) {}

  /** The state of every task of `job`, in task order. */
  async status(job: JobRef): Promise<Map<number, TaskState>> {
    const queue = await this.squeue(job);
    const states = new Map<number, TaskState>();
    const missing = new Map<Part, number[]>();
    const now = Date.now();
    for (const part of job.parts) {
      for (let task = part.firstTask; task <= part.lastTask; task++) {
        const key = `${part.jobId}_${task - part.firstTask + 1}`;
        const entry = queue.get(key);
        const live = entry && liveState(entry);
        if (live) this.missingSince.delete(key);
        const known = live ?? this.ended.get(key);
        if (known) {
          states.set(task, known);
          continue;
        }
        states.set(task, { state: "unknown" });
        const since = this.missingSince.get(key) ?? now;
        this.missingSince.set(key, since);
        if (now - since <= this.endWaitMs) missing.set(part, [...(missing.get(part) ?? []), task]);
      }
    }
    if (missing.size > 0) await this.readEnds(job, missing, states);
    return states;
  }

  /** Forgets every task. */
  clear(): void {
    this.ended.clear();
    this.missingSince.clear();
  }

  /** squeue's entries of the job's tasks, by `<job id>_<index>`. */
  private async squeue(job: JobRef): Promise<Map<string, QueueEntry>> {
    const command = `squeue -h -r --name=${shellQuote(job.name)} -o ${shellQuote(squeueFormat)}`;
    const result = await this.commands.poll(command, "squeue");
    if (result.code === 127) throw this.commands.notFound(result, "squeue", "SCHEDULER_FAILED");
    if (result.code !== 0) {
      throw new SheepdogError(
        "SCHEDULER_FAILED",
        source,
        `squeue failed (exit code ${result.code ?? result.signal}): ${outputOf(result) || "no message"}. Is slurmctld up?`,
      );
    }
    const parts = new Set(job.parts.map((part) => part.jobId));
    const entries = new Map<string, QueueEntry>();
    for (const entry of parseSqueue(result.stdout)) {
      if (parts.has(entry.jobId)) entries.set(`${entry.jobId}_${entry.index}`, entry);
    }
    return entries;
  }

  /** Looks up how the `missing` tasks ended; keeps and sets those that Slurm knows. */
  private async readEnds(
    job: JobRef,
    missing: Map<Part, number[]>,
    states: Map<number, TaskState>,
  ): Promise<void> {
    const parts = [...missing.keys()];
    const accounting = await this.accounting();
    let records = accounting ? await this.sacct(parts) : new Map<string, EndRecord>();
    // sacct lags the queue by a second or so; scontrol knows at once, but not the peak memory
    // that tells an out-of-memory kill apart: it stands in only once sacct has had its time.
    const now = Date.now();
    const lagging = (part: Part, task: number) => {
      const key = this.key(part, task);
      return (
        !records.has(key) &&
        (!accounting || now - (this.missingSince.get(key) ?? now) >= sacctLagMs)
      );
    };
    const unknown = parts.filter((part) =>
      (missing.get(part) ?? []).some((task) => lagging(part, task)),
    );
    if (unknown.length > 0) records = new Map([...(await this.scontrol(unknown)), ...records]);
    const ended: { key: string; task: number; file: string; end: TaskEnd }[] = [];
    for (const [part, tasks] of missing) {
      for (const task of tasks) {
        const key = this.key(part, task);
        const record: EndRecord | undefined = records.get(key);
        if (!record || (record.jobName !== undefined && record.jobName !== job.name)) continue;
        const file = `${job.directory.replace(/\/+$/, "")}/${job.name}.e${part.jobId}.${task - part.firstTask + 1}`;
        ended.push({ key, task, file, end: describeEnd(record) });
      }
    }
    // What a task that ended badly wrote last to its stderr file (why its worker gave up, why
    // its interpreter could not start): one command for every task that ended in this round.
    const failed = ended.filter(({ end }) => end.kind !== "exit" || end.exitCode !== 0);
    const tails = await readStderrTails(
      (command) => this.commands.poll(command, "tail"),
      failed.map(({ file }) => file),
    );
    for (const [i, { end }] of failed.entries())
      end.reason = withStderrTail(end.reason, tails[i] ?? "");
    for (const { key, task, end } of ended) {
      const state: TaskState = { state: "finished", ...end };
      this.ended.set(key, state);
      this.missingSince.delete(key);
      states.set(task, state);
    }
  }

  private key(part: Part, task: number): string {
    return `${part.jobId}_${task - part.firstTask + 1}`;
  }

  /** sacct's final records of the parts' tasks, by `<job id>_<index>`. */
  private async sacct(parts: Part[]): Promise<Map<string, EndRecord>> {
    const ids = parts.map((part) => part.jobId).join(",");
    const result = await this.commands.poll(
      `sacct -n -P -j ${ids} --format=${sacctFormat}`,
      "sacct",
    );
    return result.code === 0 ? finalRecords(parseSacct(result.stdout)) : new Map();
  }

  /** scontrol's records of the parts' finished tasks, by `<job id>_<index>`. */
  private async scontrol(parts: Part[]): Promise<Map<string, EndRecord>> {
    const records = new Map<string, EndRecord>();
    await Promise.all(
      parts.map(async (part) => {
        const result = await this.commands.poll(`scontrol -o show job ${part.jobId}`, "scontrol");
        // "Invalid job id specified" once Slurm has forgotten the job (after MinJobAge).
        if (result.code !== 0) return;
        for (const [key, record] of finalRecords(parseScontrolJobs(result.stdout))) {
          records.set(key, record);
        }
      }),
    );
    return records;
  }
}

/** The records of tasks in a final state, by `<job id>_<index>`. */
function finalRecords(records: EndRecord[]): Map<string, EndRecord> {
  return new Map(
    records
      .filter((record) => finalStates.has(record.state))
      .map((record) => [`${record.jobId}_${record.index}`, record]),
  );
}
