/** A run of array task numbers, `first`, `first + step`, ... up to `last` (inclusive). */
export interface TaskRange {
  first: number;
  last: number;
  step: number;
}

const rangePattern = /^(\d+)(?:-(\d+)(?::(\d+))?)?$/;

/**
 * Parses GridEngine's task list as qstat prints it: `"7"`, `"5-10:1"`, `"9,10"`,
 * `"1-3:1,7,9-15:2"`. Returns `undefined` for text that is not such a list.
 */
export function parseTaskList(text: string): TaskRange[] | undefined {
  const ranges: TaskRange[] = [];
  for (const piece of text.trim().split(",")) {
    const match = rangePattern.exec(piece.trim());
    if (!match) return undefined;
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    const step = match[3] === undefined ? 1 : Number(match[3]);
    if (last < first || step < 1) return undefined;
    ranges.push({ first, last, step });
  }
  return ranges;
}

/** Calls `visit` for every task number of `ranges` that lies within `from .. to`. */
export function forEachTask(
  ranges: readonly TaskRange[],
  from: number,
  to: number,
  visit: (task: number) => void,
): void {
  for (const { first, last, step } of ranges) {
    let task = first;
    if (task < from) task = first + Math.ceil((from - first) / step) * step;
    for (; task <= last && task <= to; task += step) visit(task);
  }
}
