import type { TaskDetail } from "./api-types.js";

/** Each task's state as one byte (its character in {@link TaskStateRuns}): `.` `d` `e` `x`. */
export const STATE = { pending: 46, done: 100, error: 101, dead: 120 } as const;

/** The state of a task by its character. */
export const STATE_NAMES: Record<string, TaskDetail["state"]> = {
  ".": "pending",
  d: "done",
  e: "error",
  x: "dead",
};

/**
 * Each task's state, as runs: a state's character, then how many tasks in a row have it when
 * more than one (`d1000.24e` is 1,000 done, 24 without a report, one error). A request's tasks
 * finish in long runs, so a million tasks take a few bytes, never more than one per task.
 */
export function stateRuns(states: Uint8Array): string {
  const parts: string[] = [];
  let start = 0;
  while (start < states.length) {
    const state = states[start] as number;
    let end = start + 1;
    while (end < states.length && states[end] === state) end++;
    const length = end - start;
    parts.push(
      length === 1 ? String.fromCharCode(state) : `${String.fromCharCode(state)}${length}`,
    );
    start = end;
  }
  return parts.join("");
}
