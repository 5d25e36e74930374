import { SheepdogError } from "./errors.js";
import { source } from "./internal/source.js";

/**
 * What each call of a map needs, in no scheduler's dialect: every scheduler translates it
 * (`-l h_vmem`, `-l h_rt`, `--mem`, `--time`, ...). Time is per call: a task that runs
 * several calls (`chunkSize`) asks for that many times as much.
 *
 * @example `{ memory: "4G", time: "1:00:00", cpus: 2, queue: "short" }`
 */
export interface Resources {
  /**
   * Memory for each call: a number of bytes, or a number with `K`, `M`, `G` or `T` (powers
   * of 1024, case-insensitive, an optional trailing `B`): `"512M"`, `"4G"`, `"1.5GB"`.
   */
  memory?: string | number;
  /**
   * Run time of each call: seconds as a number, `"[D-]H:MM:SS"`, `"M:SS"`, or a number with
   * `s`, `m`, `h` or `d`: `"1:00:00"`, `"90s"`, `"2h"`, `"1-12:00:00"`.
   */
  time?: string | number;
  /** CPU cores for each call. */
  cpus?: number;
  /** Where to run: GridEngine's queue, Slurm's partition. */
  queue?: string;
}

/** {@link Resources} read, for one array task: what a scheduler translates. */
export interface TaskResources {
  memoryBytes?: number;
  timeSeconds?: number;
  cpus?: number;
  queue?: string;
}

/** The keys of {@link Resources}. */
export const resourceKeys = ["memory", "time", "cpus", "queue"] as const;

const sizeUnits: Record<string, number> = {
  "": 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
};

/** Bytes of a size as {@link Resources.memory} reads it, or `undefined` when it is not one. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === "number") {
    return Number.isFinite(value) && value > 0 ? Math.ceil(value) : undefined;
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(value);
  if (!match) return undefined;
  const bytes = Math.ceil(Number(match[1]) * (sizeUnits[(match[2] ?? "").toLowerCase()] ?? 1));
  return bytes > 0 ? bytes : undefined;
}

const durationUnits: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Seconds of a duration as {@link Resources.time} reads it, or `undefined`. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === "number") {
    return Number.isFinite(value) && value > 0 ? Math.ceil(value) : undefined;
  }
  const text = value.trim();
  const unit = /^(\d+(?:\.\d+)?)\s*([smhd]?)$/i.exec(text);
  if (unit) {
    const seconds = Math.ceil(
      Number(unit[1]) * (durationUnits[(unit[2] || "s").toLowerCase()] ?? 1),
    );
    return seconds > 0 ? seconds : undefined;
  }
  const clock = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$/.exec(text);
  if (!clock) return undefined;
  const [days, hours, minutes, seconds] = [clock[1], clock[2], clock[3], clock[4]].map((part) =>
    Number(part ?? "0"),
  ) as [number, number, number, number];
  if (minutes >= 60 && clock[2] !== undefined) return undefined;
  if (seconds >= 60) return undefined;
  const total = days * 86400 + hours * 3600 + minutes * 60 + seconds;
  return total > 0 ? total : undefined;
}

function invalid(message: string): SheepdogError {
  return new SheepdogError("CONFIG_INVALID", source, message);
}

/**
 * Reads {@link Resources} given by a user (`where` names them in errors: `"resources"`,
 * `"resources returned by retryWith"`). Throws `CONFIG_INVALID` naming the field and the fix.
 */
export function parseResources(value: unknown, where = "resources"): TaskResources {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid(`${where} must be an object, like { memory: "4G", time: "1:00:00" }.`);
  }
  const given = value as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!(resourceKeys as readonly string[]).includes(key)) {
      throw invalid(
        `${where} has no field "${key}": it takes ${resourceKeys.join(", ")}. Put anything else in the scheduler's own options (geOpts, slurmOpts).`,
      );
    }
  }
  const read: TaskResources = {};
  const { memory, time, cpus, queue } = given;
  if (memory !== undefined) {
    const bytes =
      typeof memory === "string" || typeof memory === "number" ? parseSize(memory) : undefined;
    if (bytes === undefined) {
      throw invalid(
        `${where}.memory must be a size such as "512M" or "4G" (powers of 1024), not ${JSON.stringify(memory)}.`,
      );
    }
    read.memoryBytes = bytes;
  }
  if (time !== undefined) {
    const seconds =
      typeof time === "string" || typeof time === "number" ? parseDuration(time) : undefined;
    if (seconds === undefined) {
      throw invalid(
        `${where}.time must be a duration such as "1:00:00", "30:00", "90s" or "2h", not ${JSON.stringify(time)}.`,
      );
    }
    read.timeSeconds = seconds;
  }
  if (cpus !== undefined) {
    if (!Number.isSafeInteger(cpus) || (cpus as number) < 1) {
      throw invalid(
        `${where}.cpus must be a whole number of at least 1, not ${JSON.stringify(cpus)}.`,
      );
    }
    read.cpus = cpus as number;
  }
  if (queue !== undefined) {
    if (typeof queue !== "string" || !/^[A-Za-z0-9_.@,-]+$/.test(queue)) {
      throw invalid(
        `${where}.queue must be a queue or partition name of letters, digits and "_.@,-", not ${JSON.stringify(queue)}.`,
      );
    }
    read.queue = queue;
  }
  return read;
}

/** What one array task running `calls` calls one after another needs: `calls` times the time. */
export function resourcesForTask(perCall: TaskResources, calls: number): TaskResources {
  const task = { ...perCall };
  if (perCall.timeSeconds !== undefined)
    task.timeSeconds = perCall.timeSeconds * Math.max(1, calls);
  return task;
}

/** `HH:MM:SS` (hours may exceed 24) for a number of seconds, as both schedulers read it. */
export function clockTime(seconds: number): string {
  const whole = Math.max(1, Math.ceil(seconds));
  const two = (n: number) => String(n).padStart(2, "0");
  return `${Math.floor(whole / 3600)}:${two(Math.floor((whole % 3600) / 60))}:${two(whole % 60)}`;
}
