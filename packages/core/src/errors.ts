import type { RequestId } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import { source } from "./internal/source.js";

/** One failed task of a {@link TasksFailedError}. */
export interface TaskFailure {
  /** The task's index in the argument list (0-based). */
  index: number;
  /** The Python traceback, or the scheduler's account of how the task died. */
  error: string;
}

/**
 * `map(..., { throwOnError: true })` rejects with this when any task failed: code
 * `TASK_FAILED`, with the request id and every failure (ordered by index) as fields.
 */
export class TasksFailedError extends SheepdogError {
  static override readonly marker: symbol = Symbol.for("sheepdog.error.core.TasksFailedError");
  override readonly name: string = "TasksFailedError";
  readonly request: RequestId;
  readonly tasks: number;
  readonly failures: readonly TaskFailure[];

  constructor(request: RequestId, tasks: number, failures: TaskFailure[]) {
    const sorted = [...failures].sort((a, b) => a.index - b.index);
    const first = sorted[0];
    const firstLine = first ? (first.error.trimEnd().split("\n").pop() ?? "") : "";
    super(
      "TASK_FAILED",
      source,
      `${sorted.length} of ${tasks} tasks of request ${request} failed; the first, argument ${first?.index}: ${firstLine}. See every traceback in this error's failures, or with getErrors(${request}).`,
      { detail: { request, tasks, failed: sorted.length } },
    );
    this.request = request;
    this.tasks = tasks;
    this.failures = sorted;
  }
}
