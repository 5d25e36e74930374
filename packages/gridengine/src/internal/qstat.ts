import { parseTaskList, type TaskRange } from "./task-ranges.js";

/** One `<job_list>` entry of `qstat -xml`: a running task, or a job's pending tasks. */
export interface QstatEntry {
  /** The job number, as text ("123"). */
  jobId: string;
  /** GridEngine's state letters: "r", "t", "qw", "hqw", "Eqw", "dr", ... */
  state: string;
  /** The array tasks it covers, or `null` for a job that is not an array. */
  tasks: TaskRange[] | null;
  /** `queue@host` for a running task, else `null`. */
  queue: string | null;
}

/** What a task is doing, judged from its qstat state letters. */
export type QstatPhase = "queued" | "running" | "error";

const entities: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
};

function decode(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (whole, name: string) => {
    if (name.startsWith("#x")) return String.fromCodePoint(Number.parseInt(name.slice(2), 16));
    if (name.startsWith("#")) return String.fromCodePoint(Number(name.slice(1)));
    return entities[name] ?? whole;
  });
}

function child(block: string, tag: string): string | undefined {
  const match = new RegExp(`<${tag}>([^<]*)</${tag}>|<${tag}/>`).exec(block);
  if (!match) return undefined;
  return decode(match[1] ?? "");
}

/**
 * Parses the output of `qstat -xml` (Son of Grid Engine, Univa/Altair and Open Grid
 * Scheduler print the same shape). Throws an `Error` when the text is not qstat's XML.
 */
export function parseQstatXml(xml: string): QstatEntry[] {
  if (!/<job_info[\s>]/.test(xml)) {
    throw new Error(
      `qstat -xml printed no <job_info> document: ${JSON.stringify(xml.slice(0, 200))}`,
    );
  }
  const entries: QstatEntry[] = [];
  for (const match of xml.matchAll(/<job_list\b[^>]*>([\s\S]*?)<\/job_list>/g)) {
    const block = match[1] ?? "";
    const jobId = child(block, "JB_job_number")?.trim();
    const state = child(block, "state")?.trim();
    if (!jobId || !/^\d+$/.test(jobId) || state === undefined) {
      throw new Error(
        `qstat -xml printed a job entry without a job number or state: ${block.trim()}`,
      );
    }
    const taskText = child(block, "tasks");
    let tasks: TaskRange[] | null = null;
    if (taskText !== undefined && taskText.trim() !== "") {
      const parsed = parseTaskList(taskText);
      if (!parsed) throw new Error(`qstat -xml printed a task list it cannot read: "${taskText}"`);
      tasks = parsed;
    }
    const queue = child(block, "queue_name")?.trim() || null;
    entries.push({ jobId, state, tasks, queue });
  }
  return entries;
}

/**
 * Pending states (`qw`, `hqw`, `Rq`, `hRwq`) are queued; an `E` among them (`Eqw`, `Ehqw`)
 * is an error state the task will not leave by itself; every other state (`r`, `t`, `Rr`,
 * `s`, `S`, `T`, `dr`, ...) means the task has started and may still report.
 */
export function phaseOf(state: string): QstatPhase {
  if (state.includes("E")) return "error";
  if (state.includes("q")) return "queued";
  return "running";
}

/** The host of `queue@host`. */
export function hostOf(queue: string | null): string | undefined {
  if (!queue) return undefined;
  const at = queue.lastIndexOf("@");
  return at >= 0 ? queue.slice(at + 1) : undefined;
}

/**
 * Reads the "error reason" lines of `qstat -j <job>`, keyed by task number (GridEngine
 * numbers them by task; a job that is not an array uses 1).
 */
export function parseErrorReasons(text: string): Map<number, string> {
  const reasons = new Map<number, string>();
  for (const match of text.matchAll(/^error reason\s+(\d+):\s*(.*)$/gm)) {
    const message = (match[2] ?? "").trim().replace(/^\d\d\/\d\d\/\d{4} [\d:]+ \[[\d:]+\]:\s*/, "");
    reasons.set(Number(match[1]), message);
  }
  return reasons;
}

/**
 * The slots of the cluster queues in `qstat -g c` output that can take jobs: each queue's
 * TOTAL less those in disabled, suspended or error states (cdsuE), summed.
 */
export function parseClusterSlots(text: string): number | undefined {
  let slots: number | undefined;
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    // CLUSTER QUEUE, CQLOAD, USED, RES, AVAIL, TOTAL, aoACDS, cdsuE
    if (fields.length < 8 || !/^\d+$/.test(fields[5] ?? "") || !/^\d+$/.test(fields[7] ?? "")) {
      continue;
    }
    slots = (slots ?? 0) + Math.max(0, Number(fields[5]) - Number(fields[7]));
  }
  return slots;
}
