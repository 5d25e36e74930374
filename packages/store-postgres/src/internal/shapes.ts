import type { RequestId } from "@sheepdog/contracts";
import { requestNotFound, taskNotFound } from "./errors.js";
import type { Db } from "./kysely.js";
import { query } from "./kysely.js";

/** Whether `id` can be a request's id (a positive integer that fits PostgreSQL's integer). */
export function isRequestId(id: unknown): id is number {
  return Number.isInteger(id) && (id as number) > 0 && (id as number) <= 0x7fffffff;
}

/**
 * How many tasks each request has. Requests never change in shape nor are deleted, so an answer
 * is kept after one look; an unknown id is asked again next time (another process may create
 * it).
 */
export class Shapes {
  readonly #statement: string;
  readonly #known = new Map<RequestId, number>();

  constructor(statement: string) {
    this.#statement = statement;
  }

  /** Remembers the shape of a request this store just created. */
  remember(id: RequestId, tasks: number): void {
    this.#known.set(id, tasks);
  }

  /** How many tasks request `id` has, or REQUEST_NOT_FOUND. */
  async of(db: Db, id: RequestId): Promise<number> {
    const known = this.#known.get(id);
    if (known !== undefined) return known;
    if (!isRequestId(id)) throw requestNotFound(id);
    const [row] = await query<{ tasks: number }>(db, this.#statement, [id]);
    if (row === undefined) throw requestNotFound(id);
    this.#known.set(id, row.tasks);
    return row.tasks;
  }

  /** The tasks of request `id`, after checking that tasks `start .. start + count - 1` exist. */
  async range(db: Db, id: RequestId, start: number, count: number): Promise<number> {
    const tasks = await this.of(db, id);
    const inside = Number.isInteger(start) && Number.isInteger(count) && start >= 0 && count >= 0;
    if (!inside || start + count > tasks) {
      throw taskNotFound(id, count === 1 ? start : `${start} to ${start + count - 1}`, tasks);
    }
    return tasks;
  }

  /** The tasks of request `id`, after checking that every task of `indices` exists. */
  async withTasks(db: Db, id: RequestId, indices: Iterable<number>): Promise<number> {
    const tasks = await this.of(db, id);
    checkIndices(id, tasks, indices);
    return tasks;
  }
}

/** TASK_NOT_FOUND unless every index is a task of a request of `tasks` tasks. */
export function checkIndices(id: RequestId, tasks: number, indices: Iterable<number>): void {
  for (const index of indices) {
    if (!Number.isInteger(index) || index < 0 || index >= tasks) {
      throw taskNotFound(id, index, tasks);
    }
  }
}
