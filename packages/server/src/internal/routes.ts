import type {
  ReportFrame,
  ReportsReply,
  RequestId,
  Store,
  StoreReport,
  TaskHeader,
  TaskRange,
} from "@sheepdog/contracts";
import {
  BODY_HASH_HEADER,
  bodyHash,
  decodeReports,
  encodeFrames,
  encodeTaskFrames,
  encodeTaskFramesOfRuns,
  indexRuns,
  PROOF_HEADER,
  REPORTS_CONTENT_TYPE,
  reportWrites,
  SheepdogError,
  serverProof,
  storeReports,
  TASK_CONTENT_TYPE,
  taskRange,
  WIRE_VERSION,
} from "@sheepdog/contracts";
import type { ReportEvent, ResultCheck } from "../server.js";
import type { ArgsReadAhead } from "./args-read-ahead.js";
import type { AuthContext, Session, SignedRequest } from "./auth.js";
import { authenticate } from "./auth.js";
import type { BodyBudget } from "./body.js";
import { declaredLength, readLimitedBody } from "./body.js";
import type { Freshness } from "./freshness.js";
import type { RequestCache, RequestSnapshot } from "./request-cache.js";
import type { TaskClaims } from "./task-claims.js";
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

/**
 * A route: its reply, at once when it needs no wait (a task whose arguments are read already),
 * else as a promise; never a throw nor a rejection (failures become error replies).
 */
export type Route = (event: WireEvent) => Reply | Promise<Reply>;

/** What the routes work with, from the server's options and its per-server state. */
export interface RouteContext {
  store: Store;
  cache: RequestCache;
  readAhead: ArgsReadAhead;
  freshness: Freshness;
  /** Whether a signed `Host` names this server (see `AuthContext`). */
  hostAccepted: (host: string | null) => boolean;
  maxBodyBytes: number;
  /** The bytes of bodies that may be read at once. */
  budget: BodyBudget;
  checkResult: ResultCheck | undefined;
  /** Told about failures that are not the client's fault. */
  onError: (error: unknown) => void;
  /** Announces a stored report. */
  emit: (event: ReportEvent) => void;
  /** Which chunk tasks array tasks have taken, for requests that let tasks claim. */
  claims: TaskClaims;
}

/** The routes of wire protocol v2 (see `wire.ts` in `@sheepdog/contracts`). */
export interface WireRoutes {
  /** `GET /health`. */
  health: Route;
  /** `GET /v2/requests/:request/tasks/:task`. */
  task: Route;
  /** `POST /v2/requests/:request/tasks/:task/reports`. */
  reports: Route;
  /** `POST /v2/requests/:request/tasks/:task/next`. */
  next: Route;
}

const ID_PATTERN = /^[1-9][0-9]{0,14}$/;

function parseId(value: string | undefined, what: string): number {
  if (value === undefined || !ID_PATTERN.test(value)) {
    throw new WireError(400, `The ${what} in the path must be a positive integer.`);
  }
  return Number(value);
}

/**
 * A worker route's handler: its reply (at once or as a promise), given the request's
 * authentication state.
 */
type Handler = (event: WireEvent, session: Session) => Reply | Promise<Reply>;

/** `then` for a value that may or may not be a promise: at once when it is not. */
function andThen<T, U>(value: T | Promise<T>, next: (value: T) => U | Promise<U>): U | Promise<U> {
  return value instanceof Promise ? value.then(next) : next(value);
}

/** The error reply for what a handler threw. */
function failureReply(error: unknown, onError: (error: unknown) => void): Reply {
  if (error instanceof WireError) {
    return errorReply(error.status, error.message, error.headers, error.extra);
  }
  onError(error);
  return errorReply(500, "Internal server error.");
}

/** The reply with the server's proof, once the worker is authenticated. */
function proven(reply: Reply, session: Session): Reply {
  const answer = session.answer;
  if (answer !== undefined) {
    const facts = {
      method: answer.method,
      path: answer.path,
      nonce: answer.nonce,
      status: reply.status,
    };
    reply.headers[PROOF_HEADER] = serverProof(answer.key, facts, reply.body);
  }
  return reply;
}

/**
 * The handler's reply, or the error reply for what it threw (or rejected with); once the
 * worker is authenticated, either carries the server's proof.
 */
function guarded(handler: Handler, onError: (error: unknown) => void): Route {
  return (event) => {
    const session: Session = { answer: undefined };
    let outcome: Reply | Promise<Reply>;
    try {
      outcome = handler(event, session);
    } catch (error) {
      return proven(failureReply(error, onError), session);
    }
    if (!(outcome instanceof Promise)) return proven(outcome, session);
    return outcome.then(
      (reply) => proven(reply, session),
      (error: unknown) => proven(failureReply(error, onError), session),
    );
  };
}

/** The routes' context, with the failure mapping and the signature check built on it. */
interface RouteState extends RouteContext {
  /** A 404 for an unknown task; anything else is the store failing (503). */
  storeFailure: (error: unknown) => WireError;
  auth: AuthContext;
}

/** The request target of a path as sent (the web request's, when there is no Node one). */
function targetOf(url: string | undefined): string {
  if (url === undefined) return "";
  const parsed = new URL(url);
  return `${parsed.pathname}${parsed.search}`;
}

/** What a worker request says about itself (wire protocol v2). */
function signedRequest(event: WireEvent): SignedRequest {
  const { req } = event;
  const node = req.runtime?.node?.req;
  return {
    method: node?.method ?? req.method ?? "",
    target: node?.url ?? targetOf(req.url),
    host: req.headers.get("host"),
    authorization: req.headers.get("authorization"),
    bodyHash: req.headers.get(BODY_HASH_HEADER),
  };
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
  const auth: AuthContext = {
    cache: context.cache,
    freshness: context.freshness,
    hostAccepted: context.hostAccepted,
    storeFailure,
    now: Date.now,
  };
  const state: RouteState = { ...context, storeFailure, auth };
  return {
    health: guarded(() => jsonReply({ ok: true, version: WIRE_VERSION }), onError),
    task: guarded((event, session) => fetchTask(state, event, session), onError),
    reports: guarded((event, session) => postReports(state, event, session), onError),
    next: guarded((event, session) => claimTask(state, event, session), onError),
  };
}

/** A worker request's path and signature, taken from its event. */
interface WorkerPath {
  request: RequestId;
  task: number;
  signed: SignedRequest;
}

/** The request and task of the path, and what the request says about its signature. */
function workerPath(event: WireEvent): WorkerPath {
  const request = parseId(event.context.params?.request, "request id");
  const task = parseId(event.context.params?.task, "task number");
  return { request, task, signed: signedRequest(event) };
}

/** The arguments of a task: a chunk, or a retry task's list (wire.ts). */
function rangeOf(
  state: RouteState,
  snapshot: RequestSnapshot,
  task: number,
): TaskRange | Promise<TaskRange> {
  const known = taskRange(snapshot.layout, task);
  if (known !== undefined) return known;
  return refreshedRange(state, snapshot, task);
}

/** The arguments of a task past the known end: retry tasks are added to the request's meta while it runs. */
async function refreshedRange(
  state: RouteState,
  snapshot: RequestSnapshot,
  task: number,
): Promise<TaskRange> {
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

/**
 * The most arguments read from the store at once for one task's reply. A task of a million-call
 * map holds 125,000 arguments: read at once, all their views stayed alive through the
 * young-generation collections their own reading set off, and moved to the old generation
 * (about 100 MB of a million calls' promotions); read 4,096 at a time and encoded at once,
 * each read's views die young.
 */
const ARGS_PER_READ = 4096;

/**
 * A task's arguments: as read, for a task of at most {@link ARGS_PER_READ}; else already
 * encoded as frame sections, one run per read, `count` in all.
 */
type TaskArgs = { read: Uint8Array[] } | { runs: Uint8Array[]; count: number };

/** The arguments of a task: a chunk, or a retry task's list (wire.ts). */
function argsOf(
  state: RouteState,
  snapshot: RequestSnapshot,
  range: TaskRange,
): TaskArgs | Promise<TaskArgs> {
  const { id, layout } = snapshot;
  if (range.indices === undefined && range.count <= ARGS_PER_READ) {
    const read =
      range.count === 1 && layout.chunkSize === 1
        ? state.readAhead.get(id, range.first, layout.tasks)
        : state.store.getArgs(id, range.first, range.count);
    return read instanceof Promise ? read.then((args) => ({ read: args })) : { read };
  }
  const runs =
    range.indices === undefined
      ? [{ first: range.first, count: range.count }]
      : indexRuns(range.indices);
  return encodedArgs(state.store, id, runs);
}

/** The arguments of runs of consecutive indices, read and encoded {@link ARGS_PER_READ} at a time. */
async function encodedArgs(
  store: Store,
  id: RequestId,
  runs: readonly { first: number; count: number }[],
): Promise<TaskArgs> {
  const encoded = { runs: [] as Uint8Array[], count: 0 };
  for (const { first, count } of runs) {
    for (let from = first; from < first + count; from += ARGS_PER_READ) {
      const read = await store.getArgs(id, from, Math.min(ARGS_PER_READ, first + count - from));
      encoded.runs.push(encodeFrames(read));
      encoded.count += read.length;
    }
  }
  return encoded;
}

/** `GET /v2/requests/:request/tasks/:task`: the task's frames. */
function fetchTask(state: RouteState, event: WireEvent, session: Session): Reply | Promise<Reply> {
  const { request, task, signed } = workerPath(event);
  return andThen(authenticate(state.auth, signed, request, session), (snapshot) =>
    andThen(rangeOf(state, snapshot, task), (range) => {
      const heldBy = state.claims.fetchOwn(snapshot.id, snapshot.layout, task);
      if (heldBy !== undefined) return heldReply(task, heldBy);
      return servedTask(state, snapshot, task, range);
    }),
  );
}

/** The reply with task `task`'s frames, once its arguments are read. */
function servedTask(
  state: RouteState,
  snapshot: RequestSnapshot,
  task: number,
  range: TaskRange,
): Reply | Promise<Reply> {
  let args: TaskArgs | Promise<TaskArgs>;
  try {
    args = argsOf(state, snapshot, range);
  } catch (error) {
    throw state.storeFailure(error);
  }
  if (!(args instanceof Promise)) return taskReply(snapshot, task, range, args);
  return args.then(
    (read) => taskReply(snapshot, task, range, read),
    (error: unknown) => {
      throw state.storeFailure(error);
    },
  );
}

/** The 409 to an array task whose own task another one claimed (see `wire.ts`). */
function heldReply(task: number, heldBy: number): Reply {
  const message = `Task ${task} is being run by task ${heldBy}, which claimed it.`;
  return errorReply(409, message, {}, { heldBy });
}

const EMPTY_BODY_HASH = bodyHash(new Uint8Array(0));

/**
 * `POST /v2/requests/:request/tasks/:task/next`: array task `:task` asks for a task to run;
 * the frames of one it now holds, or an empty body when there is none.
 */
function claimTask(state: RouteState, event: WireEvent, session: Session): Reply | Promise<Reply> {
  const { request, task: holder, signed } = workerPath(event);
  return andThen(authenticate(state.auth, signed, request, session), async (snapshot) => {
    const { headers } = event.req;
    const length = headers.get("content-length");
    if (
      signed.bodyHash !== EMPTY_BODY_HASH ||
      headers.get("transfer-encoding") !== null ||
      (length !== null && length !== "0")
    ) {
      throw new WireError(400, "A claim's body is empty.", { connection: "close" });
    }
    let task: number | undefined;
    try {
      task = await state.claims.claim(snapshot.id, snapshot.layout, holder);
    } catch (error) {
      throw state.storeFailure(error);
    }
    if (task === undefined) return { status: 200, headers: {}, body: new Uint8Array(0) };
    return servedTask(state, snapshot, task, taskRange(snapshot.layout, task) as TaskRange);
  });
}

/** The reply to a task fetch: the task's frames. */
function taskReply(
  snapshot: RequestSnapshot,
  task: number,
  range: TaskRange,
  args: TaskArgs,
): Reply {
  const header: TaskHeader = {
    version: WIRE_VERSION,
    request: snapshot.id,
    task,
    first: range.first,
    count: range.count,
    ...(range.indices && { indices: [...range.indices] }),
  };
  const { func, ns } = snapshot;
  const body =
    "read" in args
      ? encodeTaskFrames({ header, func, ns, args: args.read })
      : encodeTaskFramesOfRuns({ header, func, ns, ...args });
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

/** `POST /v2/requests/:request/tasks/:task/reports`: stores the post's reports. */
function postReports(
  state: RouteState,
  event: WireEvent,
  session: Session,
): Reply | Promise<Reply> {
  const { request, task, signed } = workerPath(event);
  return andThen(authenticate(state.auth, signed, request, session), (snapshot) =>
    andThen(rangeOf(state, snapshot, task), (range) =>
      storePost(state, event, snapshot, range, signed.bodyHash ?? ""),
    ),
  );
}

/** The rest of a post, once its worker is authenticated and its task known. */
async function storePost(
  state: RouteState,
  event: WireEvent,
  snapshot: RequestSnapshot,
  range: TaskRange,
  signedHash: string,
): Promise<Reply> {
  checkReportHeaders(event);
  const room = reserveBodyRoom(state, event);
  let stored: boolean[];
  let writes: StoreReport[];
  try {
    const reports = await readReports(event, state.maxBodyBytes, signedHash);
    writes = framedWrites(reports, range);
    if (state.checkResult !== undefined) writes = await checkedResults(writes, state.checkResult);
    stored = await storeWrites(state, snapshot.id, writes);
  } finally {
    // The body's bytes are held until the store has them.
    state.budget.release(room);
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

/**
 * Reserves room for a post's body among the bodies being read (its declared length, or the
 * per-body limit when chunked); refuses the post with 503 when there is none now.
 */
function reserveBodyRoom(state: RouteState, event: WireEvent): number {
  const room = declaredLength(event.req, state.maxBodyBytes) ?? state.maxBodyBytes;
  if (!state.budget.reserve(room)) {
    throw new WireError(503, "The server is reading too many bodies at once. Try again shortly.", {
      "retry-after": "1",
      connection: "close",
    });
  }
  return room;
}

function storeWrites(
  state: RouteState,
  id: RequestSnapshot["id"],
  writes: StoreReport[],
): Promise<boolean[]> {
  return storeReports(state.store, id, writes).catch((error: unknown) => {
    throw state.storeFailure(error);
  });
}

/** Refuses (415) a post of another content type, or with a content encoding. */
function checkReportHeaders(event: WireEvent): void {
  const contentType = (event.req.headers.get("content-type") ?? "").split(";")[0]?.trim();
  if (contentType?.toLowerCase() !== REPORTS_CONTENT_TYPE) {
    throw new WireError(415, `Reports must be sent as ${REPORTS_CONTENT_TYPE}.`);
  }
  const encoding = event.req.headers.get("content-encoding");
  if (encoding !== null && encoding.trim().toLowerCase() !== "identity") {
    throw new WireError(415, "Reports must be sent without a Content-Encoding.");
  }
}

/** The reports of a post, once its body matches its signed hash and its frames are checked. */
async function readReports(
  event: WireEvent,
  maxBodyBytes: number,
  signedHash: string,
): Promise<ReportFrame[]> {
  const body = await readLimitedBody(event.req, maxBodyBytes);
  if (bodyHash(body) !== signedHash) {
    throw new WireError(400, `The body does not match its ${BODY_HASH_HEADER} header.`);
  }
  try {
    return decodeReports(body);
  } catch (error) {
    if (SheepdogError.isInstance(error)) {
      throw new WireError(400, error.message.replace(/^\[sheepdog\] \[[^\]]*\] /, ""));
    }
    throw error;
  }
}

/** The store writes of a post's reports; a post with a bad report is refused whole (400). */
function framedWrites(reports: readonly ReportFrame[], range: TaskRange): StoreReport[] {
  try {
    return reportWrites(reports, range);
  } catch (error) {
    if (SheepdogError.isInstance(error)) {
      throw new WireError(400, error.message.replace(/^\[sheepdog\] \[[^\]]*\] /, ""));
    }
    throw error;
  }
}

type Verdict = ReturnType<ResultCheck>;

/**
 * The checks of a post's results, started together. A check that throws stops the post; the
 * checks already started are then left to finish unobserved.
 */
function startChecks(writes: readonly StoreReport[], checkResult: ResultCheck): Verdict[] {
  const verdicts: Verdict[] = [];
  try {
    for (const write of writes) {
      verdicts.push(write.kind === "result" ? checkResult(write.value) : undefined);
    }
  } catch (error) {
    for (const verdict of verdicts) if (typeof verdict === "object") verdict.catch(() => {});
    throw error;
  }
  return verdicts;
}

/**
 * The writes with each result that `checkResult` finds unusable turned into its task's error
 * (with the facts of its report). The post waits for the checks that answer with a promise (all
 * at once).
 */
async function checkedResults(
  writes: StoreReport[],
  checkResult: ResultCheck,
): Promise<StoreReport[]> {
  const verdicts = startChecks(writes, checkResult);
  const reasons = verdicts.some((verdict) => typeof verdict === "object")
    ? await Promise.all(verdicts)
    : (verdicts as (string | undefined)[]);
  return writes.map((write, i) => {
    const unusable = reasons[i];
    if (unusable === undefined) return write;
    const { index, facts } = write;
    return facts === undefined
      ? { index, kind: "error", value: unusable }
      : { index, kind: "error", value: unusable, facts };
  });
}
