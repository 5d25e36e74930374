import type { RequestMeta } from "@sheepdog/contracts";

/**
 * Which arguments each array task of a request covers (wire.ts in @sheepdog/contracts): the
 * first `ceil(tasks / chunkSize)` tasks are chunks of consecutive arguments, and each retry
 * adds tasks for the lists of arguments it runs again (`retryTasks` in the request's meta).
 */
export interface TaskLayout {
  tasks: number;
  chunkSize: number;
  retryTasks: readonly (readonly number[])[];
}

/** The layout a request's meta describes. */
export function layoutOf(meta: RequestMeta, tasks: number): TaskLayout {
  const chunkSize =
    typeof meta.chunkSize === "number" &&
    Number.isSafeInteger(meta.chunkSize) &&
    meta.chunkSize >= 1
      ? meta.chunkSize
      : 1;
  const retryTasks = Array.isArray(meta.retryTasks) ? (meta.retryTasks as number[][]) : [];
  return { tasks, chunkSize, retryTasks };
}

/** How many array tasks the layout has: the chunks and every retry task. */
export function taskCount(layout: TaskLayout): number {
  return Math.ceil(layout.tasks / layout.chunkSize) + layout.retryTasks.length;
}

/** The argument indices request task `task` (1-based) covers; none for a task past the end. */
export function taskIndices(layout: TaskLayout, task: number): readonly number[] {
  const chunks = Math.ceil(layout.tasks / layout.chunkSize);
  if (task <= chunks) {
    const first = (task - 1) * layout.chunkSize;
    const count = Math.min(layout.chunkSize, layout.tasks - first);
    return Array.from({ length: Math.max(0, count) }, (_, i) => first + i);
  }
  return layout.retryTasks[task - chunks - 1] ?? [];
}

/**
 * Splits the arguments to run again into retry tasks of about `chunkSize` each, keeping the
 * order (each list ascending, as wire.ts asks).
 */
export function retryChunks(indices: readonly number[], chunkSize: number): number[][] {
  const sorted = [...new Set(indices)].sort((a, b) => a - b);
  const chunks: number[][] = [];
  for (let i = 0; i < sorted.length; i += chunkSize) chunks.push(sorted.slice(i, i + chunkSize));
  return chunks;
}
