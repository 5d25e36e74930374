import type {
  ReportFrame,
  ReportsReply,
  Store,
  StoreReport,
  TaskHeader,
  TaskRange,
} from "@sheepdog/contracts";
import {
  decodeReports,
  encodeTaskFrames,
  indexRuns,
  REPORTS_CONTENT_TYPE,
  SheepdogError,
  storeReports,
  TASK_CONTENT_TYPE,
  taskRange,
  WIRE_VERSION,
} from "@sheepdog/contracts";
import type { ReportEvent } from "../server.js";
import type { ArgsReadAhead } from "./args-read-ahead.js";
import type { Authorise } from "./auth.js";
import { bearerAuth } from "./auth.js";
import { readLimitedBody } from "./body.js";
import type { RequestCache, RequestSnapshot } from "./request-cache.js";
import type { Reply } from "./wire-error.js";
import { errorReply, jsonReply, WireError } from "./wire-error.js";

/**
 * What the worker routes read of a request: a structural part of h3's event, which the
 * server's direct path builds from a Node request without h3.
 */
export interface WireEvent {
  readonly context: { readonly params?: Readonly<Record<string, string>> | undefined };
  readonly req: Parameters<typeof readLimitedBody>[0];
}

/** A route: its reply, never a rejection (failures become error replies). */
export type Route = (event: WireEvent) => Promise<Reply>;

/** What the routes work with, from the server's options and its per-server state. */
export interface RouteContext {
  store: Store;
  cache: RequestCache;
  readAhead: ArgsReadAhead;
  maxBodyBytes: number;
  checkResult: ((payload: Uint8Array) => string | undefined) | undefined;
  /** Told about failures that are not the client's fault. */
  onError: (error: unknown) => void;
  /** Announces a stored report. */
  emit: (event: ReportEvent) => void;
}

/** The routes of wire protocol v1 (see `wire.ts` in `@sheepdog/contracts`). */
export interface WireRoutes {
  /** `GET /health`. */
  health: Route;
  /** `GET /v1/requests/:request/tasks/:task`. */
  task: Route;
  /** `POST /v1/requests/:request/tasks/:task/reports`. */
  reports: Route;
}

const ID_PATTERN = /^[1-9][0-9]{0,14}$/;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function parseId(value: string | undefined, what: string): number {
  if (value === undefined || !ID_PATTERN.test(value)) {
    throw new WireError(400, `The ${what} in the path must be a positive integer.`);
  }
  return Number(value);
}

function isPickle(payload: Uint8Array): boolean {
  // Protocol 2 and later start with PROTO <version> and every pickle ends with STOP.
  const version = payload[1];
  return (
    payload.byteLength >= 3 &&
    payload[0] === 0x80 &&
    version !== undefined &&
    version >= 2 &&
    version <= 5 &&
    payload[payload.byteLength - 1] === 0x2e
  );
}

/** The handler's reply, or the error reply for what it threw. */
function guarded(handler: Route, onError: (error: unknown) => void): Route {
  return async (event) => {
    try {
      return await handler(event);
    } catch (error) {
      if (error instanceof WireError) return errorReply(error.status, error.message, error.headers);
      onError(error);
      return errorReply(500, "Internal server error.");
    }
  };
}

/** The routes' context, with the failure mapping and the token check built on it. */
interface RouteState extends RouteContext {
  /** A 404 for an unknown request or task; anything else is the store failing (503). */
  storeFailure: (error: unknown) => WireError;
  authorise: Authorise;
}

/** The routes of one server. */
export function wireRoutes(context: RouteContext): WireRoutes {
  const { onError } = context;
  const storeFailure = (error: unknown): WireError => {
    if (SheepdogError.isInstance(error)) {
      if (error.code === "REQUEST_NOT_FOUND") return new WireError(404, "No such request.");
      if (error.code === "TASK_NOT_FOUND") return new WireError(404, "No such task.");
    }
    onError(error);
    return new WireError(503, "The server cannot use its store right now. Try again later.", {
      "retry-after": "1",
    });
  };
  const state: RouteState = {
    ...context,
    storeFailure,
    authorise: bearerAuth(context.cache, storeFailure),
  };
  return {
    health: guarded(async () => jsonReply({ ok: true, version: WIRE_VERSION }), onError),
    task: guarded((event) => fetchTask(state, event), onError),
    reports: guarded((event) => postReports(state, event), onError),
  };
}

/** The request and task of the path, once the worker's token is checked. */
async function taskOf(
  state: RouteState,
  event: WireEvent,
): Promise<{ snapshot: RequestSnapshot; task: number }> {
  const request = parseId(event.context.params?.request, "request id");
  const task = parseId(event.context.params?.task, "task number");
  const snapshot = await state.authorise(event.req.headers.get("authorization"), request);
  return { snapshot, task };
}

/** The arguments of a task: a chunk, or a retry task's list (wire.ts). */
async function rangeOf(
  state: RouteState,
  snapshot: RequestSnapshot,
  task: number,
): Promise<TaskRange> {
  const known = taskRange(snapshot.layout, task);
  if (known !== undefined) return known;
  // Retry tasks are added to the request's meta while it runs: read it again.
  let refreshed: RequestSnapshot;
  try {
    refreshed = await state.cache.refresh(snapshot.id);
  } catch (error) {
    throw state.storeFailure(error);
  }
  const range = taskRange(refreshed.layout, task);
  if (range === undefined) throw new WireError(404, "No such task.");
  return range;
}

/** The arguments of a task's indices, reading runs of consecutive indices at once. */
async function argsOf(
  state: RouteState,
  snapshot: RequestSnapshot,
  range: TaskRange,
): Promise<Uint8Array[]> {
  const { id, layout } = snapshot;
  if (range.indices === undefined) {
    return range.count === 1 && layout.chunkSize === 1
      ? state.readAhead.get(id, range.first, layout.tasks)
      : state.store.getArgs(id, range.first, range.count);
  }
  const args: Uint8Array[] = [];
  for (const run of indexRuns(range.indices)) {
    args.push(...(await state.store.getArgs(id, run.first, run.count)));
  }
  return args;
}

async function fetchTask(state: RouteState, event: WireEvent): Promise<Reply> {
  const { snapshot, task } = await taskOf(state, event);
  const range = await rangeOf(state, snapshot, task);
  let args: Uint8Array[];
  try {
    args = await argsOf(state, snapshot, range);
  } catch (error) {
    throw state.storeFailure(error);
  }
  const header: TaskHeader = {
    version: WIRE_VERSION,
    request: snapshot.id,
    task,
    first: range.first,
    count: range.count,
    ...(range.indices && { indices: [...range.indices] }),
  };
  const body = encodeTaskFrames({ header, func: snapshot.func, ns: snapshot.ns, args });
  return {
    status: 200,
    headers: {
      "content-type": TASK_CONTENT_TYPE,
      "content-length": String(body.byteLength),
      "cache-control": "no-store",
    },
    body,
  };
}

async function postReports(state: RouteState, event: WireEvent): Promise<Reply> {
  const { snapshot, task } = await taskOf(state, event);
  const range = await rangeOf(state, snapshot, task);
  const reports = await readReports(event, state.maxBodyBytes);
  const writes = checkedWrites(reports, range, state.checkResult);
  let stored: boolean[];
  try {
    stored = await storeReports(state.store, snapshot.id, writes);
  } catch (error) {
    throw state.storeFailure(error);
  }
  const reply: ReportsReply = { stored: 0, duplicates: 0 };
  for (const [i, write] of writes.entries()) {
    if (stored[i] !== true) {
      reply.duplicates += 1;
      continue;
    }
    reply.stored += 1;
    state.emit({ request: snapshot.id, index: write.index, kind: write.kind });
  }
  return jsonReply(reply);
}

/** The reports of a post, once its content type, encoding and frames are checked. */
async function readReports(event: WireEvent, maxBodyBytes: number): Promise<ReportFrame[]> {
  const contentType = (event.req.headers.get("content-type") ?? "").split(";")[0]?.trim();
  if (contentType?.toLowerCase() !== REPORTS_CONTENT_TYPE) {
    throw new WireError(415, `Reports must be sent as ${REPORTS_CONTENT_TYPE}.`);
  }
  const encoding = event.req.headers.get("content-encoding");
  if (encoding !== null && encoding.trim().toLowerCase() !== "identity") {
    throw new WireError(415, "Reports must be sent without a Content-Encoding.");
  }
  const body = await readLimitedBody(event.req, maxBodyBytes);
  try {
    return decodeReports(body);
  } catch (error) {
    if (SheepdogError.isInstance(error)) {
      throw new WireError(400, error.message.replace(/^\[sheepdog\] \[[^\]]*\] /, ""));
    }
    throw error;
  }
}

/**
 * The store writes of a post's reports. Refuses (400) the whole post when a report is outside
 * the task, a second one for an index, an error that is not UTF-8 or a result that is not a
 * pickle; a result that `checkResult` finds unusable becomes its task's error.
 */
function checkedWrites(
  reports: readonly ReportFrame[],
  range: TaskRange,
  checkResult: RouteContext["checkResult"],
): StoreReport[] {
  const members = range.indices && new Set(range.indices);
  const inTask = members
    ? (index: number) => members.has(index)
    : (index: number) => index >= range.first && index < range.first + range.count;
  const seen = new Set<number>();
  return reports.map(({ index, kind, payload }): StoreReport => {
    if (!inTask(index)) throw new WireError(400, "A report's index is outside this task's range.");
    if (seen.has(index)) {
      throw new WireError(400, "A post carries two reports for the same index.");
    }
    seen.add(index);
    if (kind === "error") {
      try {
        return { index, kind, value: strictUtf8.decode(payload) };
      } catch {
        throw new WireError(400, "An error report is not UTF-8 text.");
      }
    }
    if (!isPickle(payload))
      throw new WireError(400, "A result is not a pickle of protocol 2 to 5.");
    const unusable = checkResult?.(payload);
    return unusable === undefined
      ? { index, kind: "result", value: payload }
      : { index, kind: "error", value: unusable };
  });
}
