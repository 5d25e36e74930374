import type { TaskError } from "@sheepdog/contracts";
import type { DeadGroup, ErrorGroup, FailedTask } from "./api-types.js";
import { MAX_ERROR_GROUPS, MAX_GROUP_EXAMPLES, MAX_GROUP_INDICES } from "./api-types.js";
import { pickleRepr } from "./repr.js";

/** What a task's error text says: an exception it raised, or that it died without reporting. */
export type ErrorCause =
  | { dead: false; type: string; message: string }
  | { dead: true; kind: string; cause: string };

/**
 * Core's words for a task that ended without reporting (see `wait.ts` in `@sheepdog/core`):
 * `Task 2 of job 123 ended without reporting a result for these arguments [signal]: <cause>.`
 */
const DEAD_PATTERN = /ended without reporting[^[]*\[([a-z-]+)\]:\s*([\s\S]*?)\.?\s*$/;
/** The last line of a Python traceback: `ValueError: message`, `pkg.MyError`, `KeyError: 'x'`. */
const EXCEPTION_LINE = /^([A-Za-z_][\w.]*)(?::\s?([\s\S]*))?$/;
const MAX_MESSAGE_CHARS = 300;

/** The exception type and message of a traceback, or the kind and cause of a dead task. */
export function errorCause(error: TaskError): ErrorCause {
  const dead = DEAD_PATTERN.exec(error.error);
  if (dead) return { dead: true, kind: dead[1] as string, cause: (dead[2] as string).trim() };
  if (error.provisional) return { dead: true, kind: "unknown", cause: firstLine(error.error) };
  const lines = error.error.trimEnd().split(/\r?\n/);
  const last = (lines[lines.length - 1] ?? "").trim();
  const match = error.error.startsWith("Traceback") ? EXCEPTION_LINE.exec(last) : null;
  if (match) {
    return { dead: false, type: match[1] as string, message: cut(match[2] ?? "") };
  }
  return { dead: false, type: "Error", message: firstLine(error.error) };
}

function firstLine(text: string): string {
  return cut(text.trim().split(/\r?\n/)[0] ?? "");
}

function cut(text: string): string {
  return text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS - 3)}...` : text;
}

interface Grouped<T> {
  head: T;
  count: number;
  indices: number[];
  examples: FailedTask[];
}

function addTo<T>(groups: Map<string, Grouped<T>>, key: string, head: T, error: TaskError): void {
  let group = groups.get(key);
  if (!group) {
    group = { head, count: 0, indices: [], examples: [] };
    groups.set(key, group);
  }
  group.count += 1;
  if (group.indices.length < MAX_GROUP_INDICES) group.indices.push(error.index);
  if (group.examples.length < MAX_GROUP_EXAMPLES) {
    group.examples.push({ index: error.index, args: pickleRepr(error.args), error: error.error });
  }
}

function largestFirst<T>(groups: Map<string, Grouped<T>>): Grouped<T>[] {
  return [...groups.values()].sort((a, b) => b.count - a.count);
}

/** The errors grouped by exception type and message, and the dead tasks by kind and cause. */
export function groupErrors(errors: readonly TaskError[]): {
  errors: ErrorGroup[];
  moreErrorGroups: number;
  dead: DeadGroup[];
} {
  const raised = new Map<string, Grouped<{ type: string; message: string }>>();
  const died = new Map<string, Grouped<{ kind: string; cause: string }>>();
  for (const error of errors) {
    const cause = errorCause(error);
    if (cause.dead) {
      const head = { kind: cause.kind, cause: cause.cause };
      addTo(died, `${cause.kind}\0${cause.cause}`, head, error);
    } else {
      const head = { type: cause.type, message: cause.message };
      addTo(raised, `${cause.type}\0${cause.message}`, head, error);
    }
  }
  const sorted = largestFirst(raised);
  return {
    errors: sorted.slice(0, MAX_ERROR_GROUPS).map(({ head, ...rest }) => ({ ...head, ...rest })),
    moreErrorGroups: Math.max(0, sorted.length - MAX_ERROR_GROUPS),
    dead: largestFirst(died).map(({ head, ...rest }) => ({ ...head, ...rest })),
  };
}
