import type { JobRef, TaskState } from "@sheepdog/contracts";
import { readStderrTails, SheepdogError, withStderrTail } from "@sheepdog/contracts";
import type { Commands } from "./commands.js";
import { outputOf } from "./commands.js";
import { describeEnd, parseQacct, type QacctRecord } from "./qacct.js";
import { hostOf, parseErrorReasons, parseQstatXml, phaseOf, type QstatEntry } from "./qstat.js";
import { source } from "./source.js";
import { forEachTask } from "./task-ranges.js";

type Part = JobRef["parts"][number];

/** One of the job's tasks as `qstat` shows it. */
interface Seen {
  state: TaskState;
  /** GridEngine holds it in an error state (`Eqw`). */
  error: boolean;
}

/** What `qstat` says about one job: its tasks in qstat, and its parts holding a task in `Eqw`. */
interface QstatView {
  tasks: Map<number, Seen>;
  inError: Set<string>;
}

/** The tasks of `job` that `qstat` lists, by task number. */
export function tasksInQstat(job: JobRef, entries: QstatEntry[]): QstatView {
  const view: QstatView = { tasks: new Map(), inError: new Set() };
  const byJob = new Map(job.parts.map((part) => [part.jobId, part]));
  for (const entry of entries) {
    const part = byJob.get(entry.jobId);
    if (!part) continue;
    const phase = phaseOf(entry.state);
    const host = hostOf(entry.queue);
    const state: TaskState =
      phase === "running" ? { state: "running", ...(host ? { host } : {}) } : { state: "queued" };
    if (phase === "error") view.inError.add(entry.jobId);
    const mark = (task: number) => view.tasks.set(task, { state, error: phase === "error" });
    if (entry.tasks) forEachTask(entry.tasks, part.firstTask, part.lastTask, mark);
    else for (let task = part.firstTask; task <= part.lastTask; task++) mark(task);
  }
  return view;
}

/** A task that this status round found finished. */
interface Ended {
  part: Part;
  task: number;
  state: Extract<TaskState, { state: "finished" }>;
}

/** What one status round reads and fills in. */
interface Round {
  job: JobRef;
  view: QstatView;
  now: number;
  states: Map<number, TaskState>;
  /** The tasks found finished in this round. */
  ended: Ended[];
}

/**
 * The stderr file GridEngine gives a task of an array job, `<name>.e<job id>.<task>` in the
 * job directory (where `jobScript` points `-e` unless the options name another place).
 */
export function stderrFile(job: JobRef, part: Part, task: number): string {
  return `${job.directory.replace(/\/+$/, "")}/${job.name}.e${part.jobId}.${task}`;
}

/** A task in qstat, with the reason GridEngine holds it when it is in `Eqw`. */
function stateInQstat(seen: Seen, task: number, reasons?: Map<number, string>): TaskState {
  if (!seen.error) return seen.state;
  const error = reasons?.get(task) ?? reasons?.values().next().value ?? "in an error state (Eqw)";
  return { state: "queued", error };
}

/**
 * Follows tasks through `qstat`, then `qacct`: a task that has left `qstat` is `unknown` until
 * `qacct` has its record (then `finished`, kept for good), and is no longer asked about once
 * `qacctWaitMs` has passed since it left.
 */
export class TaskStatus {
  /** `jobId.task` -> how the task ended, once qacct said so. Final, so kept. */
  private readonly ended = new Map<string, TaskState>();
  /** `jobId.task` -> when status() first found the task gone from qstat. */
  private readonly missingSince = new Map<string, number>();
  /** False once qacct turned out not to be installed. */
  private qacctInstalled = true;

  constructor(
    private readonly commands: Commands,
    private readonly qacctWaitMs: number,
  ) {}

  /**
   * The state of every task of `job`, in task order. A task that ended any other way than
   * with exit status 0 (an uncaught failure of its worker, a missing interpreter, a signal)
   * has the end of its stderr file added to its reason: one command reads them for every
   * task that ended in this round.
   */
  async status(job: JobRef): Promise<Map<number, TaskState>> {
    const view = tasksInQstat(job, await this.qstat());
    const round: Round = { job, view, now: Date.now(), states: new Map(), ended: [] };
    await Promise.all(job.parts.map((part) => this.readPart(round, part)));
    await this.addStderrTails(round);
    return new Map([...round.states].sort((a, b) => a[0] - b[0]));
  }

  /** Forgets every task. */
  clear(): void {
    this.ended.clear();
    this.missingSince.clear();
  }

  /** `qstat -xml` for the user's jobs; a failure rejects rather than calling tasks unknown. */
  private async qstat(): Promise<QstatEntry[]> {
    const result = await this.commands.poll("qstat -xml -u '$user' -s prs", "qstat");
    if (result.code === 127) throw this.commands.notFound(result, "qstat", "SCHEDULER_FAILED");
    if (result.code !== 0) {
      throw new SheepdogError(
        "SCHEDULER_FAILED",
        source,
        `qstat failed (exit code ${result.code ?? result.signal}): ${outputOf(result) || "no message"}. Is the GridEngine qmaster up?`,
      );
    }
    try {
      return parseQstatXml(result.stdout);
    } catch (error) {
      throw SheepdogError.from(error, "SCHEDULER_FAILED", source, "Cannot read qstat's answer");
    }
  }

  /** Adds the end of its stderr to the reason of each task that ended badly in `round`. */
  private async addStderrTails(round: Round): Promise<void> {
    const failed = round.ended.filter(({ state }) => state.kind !== "exit" || state.exitCode !== 0);
    const files = failed.map(({ part, task }) => stderrFile(round.job, part, task));
    const tails = await readStderrTails((command) => this.commands.poll(command, "tail"), files);
    for (const [i, { part, task, state }] of failed.entries()) {
      const tail = tails[i] ?? "";
      if (tail === "") continue;
      const told = { ...state, reason: withStderrTail(state.reason, tail) };
      this.ended.set(`${part.jobId}.${task}`, told);
      round.states.set(task, told);
    }
  }

  /** Sets the state of each task of one part into the round's states. */
  private async readPart(round: Round, part: Part): Promise<void> {
    const { view, now, states } = round;
    const reasons = view.inError.has(part.jobId) ? await this.errorReasons(part.jobId) : undefined;
    const ask: number[] = [];
    for (let task = part.firstTask; task <= part.lastTask; task++) {
      const key = `${part.jobId}.${task}`;
      const seen = view.tasks.get(task);
      if (seen) this.missingSince.delete(key);
      const known = seen ? stateInQstat(seen, task, reasons) : this.ended.get(key);
      if (known) {
        states.set(task, known);
        continue;
      }
      const since = this.missingSince.get(key) ?? now;
      this.missingSince.set(key, since);
      states.set(task, { state: "unknown" });
      if (now - since <= this.qacctWaitMs) ask.push(task);
    }
    if (ask.length > 0) await this.readEnds(round, part, ask);
  }

  /** Asks qacct how the tasks `ask` (gone from qstat) ended; keeps and sets those it knows. */
  private async readEnds(round: Round, part: Part, ask: number[]): Promise<void> {
    const { job, states } = round;
    const records = new Map<number, QacctRecord>();
    const first = ask[0] ?? part.firstTask;
    const last = ask[ask.length - 1] ?? part.lastTask;
    for (const record of await this.accounting(part.jobId, first, last)) {
      // Job numbers wrap around; the unique job name tells this job's records apart.
      if (record.jobName !== null && record.jobName !== job.name) continue;
      records.set(record.taskId ?? part.firstTask, record);
    }
    for (const task of ask) {
      const record = records.get(task);
      const end = record && describeEnd(record);
      if (!end) continue;
      const state = { state: "finished" as const, ...end };
      this.ended.set(`${part.jobId}.${task}`, state);
      this.missingSince.delete(`${part.jobId}.${task}`);
      states.set(task, state);
      round.ended.push({ part, task, state });
    }
  }

  /** `qstat -j <job>`'s error reasons, for tasks in an error state. */
  private async errorReasons(jobId: string): Promise<Map<number, string>> {
    try {
      const result = await this.commands.poll(`qstat -j ${jobId}`, "qstat -j");
      return result.code === 0 ? parseErrorReasons(result.stdout) : new Map();
    } catch {
      return new Map();
    }
  }

  /**
   * qacct's records of tasks `first .. last` of one job (`-t` keeps the answer small while a
   * large array runs), or none when accounting has nothing (yet) or is absent.
   */
  private async accounting(jobId: string, first: number, last: number): Promise<QacctRecord[]> {
    if (!this.qacctInstalled) return [];
    const result = await this.commands.poll(`qacct -j ${jobId} -t ${first}-${last}`, "qacct");
    if (result.code === 127) {
      this.qacctInstalled = false;
      return [];
    }
    // Exit code 1 with "error: job id N not found" until the record is flushed, or when the
    // cluster keeps no accounting file: either way, no record.
    return result.code === 0 ? parseQacct(result.stdout) : [];
  }
}
