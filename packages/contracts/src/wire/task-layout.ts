import { SheepdogError } from "../errors.js";
import { source } from "../internal/source.js";
import type { RequestMeta } from "../store.js";

/**
 * Which arguments each array task of a request covers (see `wire.ts`): the first
 * `ceil(tasks / chunkSize)` tasks are chunks of consecutive arguments, and each retry adds
 * tasks for the lists of arguments it runs again (`retryTasks` in the request's meta).
 */
export interface TaskLayout {
  /** How many arguments (store indices `0 .. tasks - 1`) the request has. */
  tasks: number;
  /** Arguments per chunk task (the request meta's `chunkSize`), at least 1. */
  chunkSize: number;
  /** The store indices of each retry task, in task order; each list ascending and distinct. */
  retryTasks: readonly (readonly number[])[];
  /**
   * The chunk tasks claimed by another array task (claimed task -> its holder), when the
   * request lets tasks claim (its meta has `claims`, see `wire.ts`); absent when it does not.
   */
  claims?: ReadonlyMap<number, number>;
}

/**
 * The arguments one array task covers, as a task header states them: `first .. first +
 * count - 1` for a chunk, or exactly `indices` for a retry task (then `first` is
 * `indices[0]` and `count` is `indices.length`).
 */
export interface TaskRange {
  first: number;
  count: number;
  /** The retry task's store indices; absent for a chunk. */
  indices?: readonly number[];
}

/** A run of consecutive store indices: `first .. first + count - 1`. */
export interface IndexRun {
  first: number;
  count: number;
}

function chunkSizeOf(meta: RequestMeta): number {
  const value = meta.chunkSize;
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 1 ? value : 1;
}

/**
 * The meta's `retryTasks`: a list of non-empty, ascending lists of indices within the
 * request. Anything else (absent, or not of that shape) counts as no retry tasks, so that a
 * damaged meta can only make tasks unknown, never give a task the wrong arguments.
 */
function retryTasksOf(meta: RequestMeta, tasks: number): number[][] {
  const value = meta.retryTasks;
  if (!Array.isArray(value)) return [];
  const lists: number[][] = [];
  for (const list of value) {
    if (!Array.isArray(list) || list.length === 0) return [];
    let previous = -1;
    for (const index of list) {
      if (!Number.isSafeInteger(index) || index <= previous || index >= tasks) return [];
      previous = index;
    }
    lists.push(list as number[]);
  }
  return lists;
}

/**
 * The layout a request's meta describes: its `chunkSize` (default 1; anything but a positive
 * integer counts as 1) and its `retryTasks` (none unless every list is non-empty, ascending
 * and within `0 .. tasks - 1`).
 *
 * @example
 * ```ts
 * const layout = layoutOf(info.meta, info.tasks);
 * ```
 */
export function layoutOf(meta: RequestMeta, tasks: number): TaskLayout {
  const layout: TaskLayout = {
    tasks,
    chunkSize: chunkSizeOf(meta),
    retryTasks: retryTasksOf(meta, tasks),
  };
  const claims = claimsOf(meta, chunkCount(layout));
  return claims === undefined ? layout : { ...layout, claims };
}

/**
 * The meta's `claims`: an object of chunk task -> the array task that claimed it, both chunk
 * tasks. An entry of another shape is left out (its task then counts as its own array task's);
 * anything but an object means the request does not let tasks claim.
 */
function claimsOf(meta: RequestMeta, chunks: number): Map<number, number> | undefined {
  const value = meta.claims;
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const claims = new Map<number, number>();
  const isChunk = (task: number) => Number.isSafeInteger(task) && task >= 1 && task <= chunks;
  for (const [key, holder] of Object.entries(value)) {
    const task = Number(key);
    if (isChunk(task) && typeof holder === "number" && isChunk(holder) && holder !== task) {
      claims.set(task, holder);
    }
  }
  return claims;
}

/** How many of the layout's array tasks are chunks (the rest are retry tasks). */
export function chunkCount(layout: TaskLayout): number {
  return Math.ceil(layout.tasks / layout.chunkSize);
}

/** How many array tasks the layout has: the chunks and every retry task. */
export function taskCount(layout: TaskLayout): number {
  return chunkCount(layout) + layout.retryTasks.length;
}

/**
 * The arguments of array task `task` (1-based), as its task header states them; `undefined`
 * for a task that is not in the layout (0, or past the end).
 */
export function taskRange(layout: TaskLayout, task: number): TaskRange | undefined {
  if (!Number.isSafeInteger(task) || task < 1) return undefined;
  const chunks = chunkCount(layout);
  if (task <= chunks) {
    const first = (task - 1) * layout.chunkSize;
    return { first, count: Math.min(layout.chunkSize, layout.tasks - first) };
  }
  const indices = layout.retryTasks[task - chunks - 1];
  if (indices === undefined) return undefined;
  return { first: indices[0] as number, count: indices.length, indices };
}

/**
 * The store indices array task `task` (1-based) is answerable for: those its range covers,
 * unless another array task claimed it, and those of each task it claimed (see
 * {@link TaskLayout.claims}); none for a task not in the layout.
 */
export function taskIndices(layout: TaskLayout, task: number): readonly number[] {
  const held = layout.claims?.has(task) ? [] : [task];
  for (const [claimed, holder] of layout.claims ?? []) if (holder === task) held.push(claimed);
  return held.flatMap((number) => {
    const range = taskRange(layout, number);
    if (range === undefined) return [];
    return range.indices ?? Array.from({ length: range.count }, (_, i) => range.first + i);
  });
}

/**
 * Splits the arguments to run again into retry tasks of up to `chunkSize` each, in ascending
 * order without duplicates (as `retryTasks` must be). Throws a `SheepdogError`
 * (`INVALID_INPUT`) when `chunkSize` is not a positive integer.
 *
 * @example
 * ```ts
 * retryChunks([7, 2, 3, 2], 2); // [[2, 3], [7]]
 * ```
 */
export function retryChunks(indices: readonly number[], chunkSize: number): number[][] {
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `A retry chunk size must be a positive integer, not ${String(chunkSize)}. Pass the request's chunk size or 1.`,
    );
  }
  const sorted = [...new Set(indices)].sort((a, b) => a - b);
  const chunks: number[][] = [];
  for (let i = 0; i < sorted.length; i += chunkSize) chunks.push(sorted.slice(i, i + chunkSize));
  return chunks;
}

/**
 * The runs of consecutive indices in `indices`, in order, so that a range read
 * (`Store.getArgs`, `Store.unreported`) is made once per run.
 *
 * @example
 * ```ts
 * indexRuns([1, 2, 3, 7, 9, 10]); // [{ first: 1, count: 3 }, { first: 7, count: 1 }, { first: 9, count: 2 }]
 * ```
 */
export function indexRuns(indices: readonly number[]): IndexRun[] {
  const runs: IndexRun[] = [];
  let run: IndexRun | undefined;
  for (const index of indices) {
    if (run !== undefined && index === run.first + run.count) {
      run.count += 1;
    } else {
      run = { first: index, count: 1 };
      runs.push(run);
    }
  }
  return runs;
}
