import type {
  RequestCounts,
  RequestId,
  RequestInfo,
  RequestMeta,
  RequestSummary,
} from "@sheepdog/contracts";
import type { Selectable } from "kysely";
import type { SqliteStatement } from "../sqlite-database.js";
import type { Connection } from "./connection.js";
import { kyselyOf } from "./connection.js";
import { invalidInput, requestNotFound } from "./errors.js";
import { firstRow, isRequestId } from "./rows.js";
import type { Schema } from "./schema.js";

/** Meta as JSON text, or INVALID_INPUT when it is not a plain object of JSON values. */
export function metaJson(meta: unknown, what: string): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(meta);
  } catch (error) {
    throw invalidInput(`The ${what} must be JSON-serialisable: ${(error as Error).message}.`);
  }
  if (json === undefined || typeof meta !== "object" || meta === null || Array.isArray(meta)) {
    throw invalidInput(`The ${what} must be a plain object of JSON values.`);
  }
  return json;
}

/** The row of request `id`, or REQUEST_NOT_FOUND. */
function findRequest<T>(statement: SqliteStatement, id: RequestId): T {
  const row = isRequestId(id) ? (firstRow(statement, [id]) as T | undefined) : undefined;
  if (!row) throw requestNotFound(id);
  return row;
}

export function getRequest(c: Connection, id: RequestId): RequestInfo {
  const row = findRequest<Selectable<Schema["requests"]>>(c.info.requestRow, id);
  return {
    id: row.id,
    func: row.func,
    ns: row.ns,
    tasks: row.tasks,
    tokenHash: row.token_hash,
    createdAt: row.created_at,
    meta: JSON.parse(row.meta) as RequestMeta,
  };
}

export function counts(c: Connection, id: RequestId): RequestCounts {
  const row = findRequest<RequestCounts>(c.info.requestCounts, id);
  return { tasks: row.tasks, results: row.results, errors: row.errors };
}

/** Merges `patch` into the meta of request `id`. The caller holds a write transaction. */
export function updateMeta(c: Connection, id: RequestId, patch: RequestMeta): void {
  const row = findRequest<{ meta: string }>(c.info.requestMeta, id);
  const meta = { ...(JSON.parse(row.meta) as RequestMeta), ...patch };
  c.info.setMeta.run([JSON.stringify(meta), id]);
}

export async function listRequests(c: Connection): Promise<RequestSummary[]> {
  const rows = await (await kyselyOf(c))
    .selectFrom("requests")
    .select(["id", "created_at", "meta", "tasks", "results", "errors"])
    .orderBy("id")
    .execute();
  return rows.map((row) => ({
    id: row.id,
    createdAt: row.created_at,
    meta: JSON.parse(row.meta) as RequestMeta,
    tasks: row.tasks,
    results: row.results,
    errors: row.errors,
  }));
}
