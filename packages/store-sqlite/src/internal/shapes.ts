import type { RequestId } from "@sheepdog/contracts";
import type { SqliteDatabase, SqliteStatement } from "../sqlite-database.js";
import { requestNotFound, taskNotFound } from "./errors.js";
import { cells, firstRow, isRequestId } from "./rows.js";

/** Where a request's tasks are: arg rows `firstArg .. firstArg + tasks - 1`. */
export interface Shape {
  tasks: number;
  firstArg: number;
}

/**
 * Where each request's tasks are. Requests are never changed in shape nor deleted, so an
 * answer is kept after one look. Used inside the store's lock only.
 */
export class Shapes {
  readonly #statement: SqliteStatement;
  readonly #known = new Map<RequestId, Shape>();

  constructor(db: SqliteDatabase) {
    this.#statement = db.prepare("SELECT tasks, first_arg FROM requests WHERE id = ?");
  }

  /** Where request `id`'s tasks are, or REQUEST_NOT_FOUND. */
  of(id: RequestId): Shape {
    const known = this.#known.get(id);
    if (known !== undefined) return known;
    const row = isRequestId(id) ? firstRow(this.#statement, [id]) : undefined;
    if (row === undefined) throw requestNotFound(id);
    const [tasks, firstArg] = cells(row) as [number, number];
    const shape = { tasks, firstArg };
    this.#known.set(id, shape);
    return shape;
  }

  /** The shape of request `id`, after checking that tasks `start .. start + count - 1` exist. */
  range(id: RequestId, start: number, count: number): Shape {
    const shape = this.of(id);
    const inside = Number.isInteger(start) && Number.isInteger(count) && start >= 0 && count >= 0;
    if (!inside || start + count > shape.tasks) {
      throw taskNotFound(id, count === 1 ? start : `${start} to ${start + count - 1}`, shape.tasks);
    }
    return shape;
  }

  /** The shape of request `id`, after checking that every task of `indices` exists. */
  withTasks(id: RequestId, indices: Iterable<number>): Shape {
    const shape = this.of(id);
    for (const index of indices) {
      if (!Number.isInteger(index) || index < 0 || index >= shape.tasks) {
        throw taskNotFound(id, index, shape.tasks);
      }
    }
    return shape;
  }
}
