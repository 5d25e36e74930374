import { SheepdogError } from "../errors.js";
import { source } from "../internal/source.js";
import { ReportWatchers } from "../report-watchers.js";
import type {
  CreatedRequest,
  NewRequest,
  PutErrorOptions,
  RequestCounts,
  RequestId,
  RequestInfo,
  RequestMeta,
  RequestSummary,
  Store,
  StoreReport,
  TaskError,
  TaskFacts,
  TaskFactsEntry,
  TaskLog,
  TaskResult,
} from "../store.js";
import { taskFactsProblem } from "../store.js";
import { hashToken, newToken } from "../token.js";

/** What a memory store keeps of one request. */
export interface MemoryRequest {
  info: RequestInfo;
  args: Uint8Array[];
  /**
   * Task index -> its first report (or a real one that replaced a provisional error), with the
   * facts that came with it.
   */
  reports: Map<
    number,
    ({ result: Uint8Array } | { error: string; provisional?: true }) & { facts?: TaskFacts }
  >;
  results: number;
  errors: number;
}

/**
 * The data behind one or more memory stores. Stores opened on the same data share it, as two
 * connections share one database file, so closing a store and opening another on its data
 * "reopens" it.
 */
export interface MemoryStoreData {
  /** The id the next request gets. */
  nextId: number;
  requests: Map<RequestId, MemoryRequest>;
}

/** Options of {@link memoryStore}. */
export interface MemoryStoreOptions {
  /** The data to open, from another memory store's `data`. @default fresh, empty data */
  data?: MemoryStoreData;
}

/** A {@link Store} kept in memory, usable with `await using`. */
export interface MemoryStore extends Store, AsyncDisposable {
  /** Its data, to open another store on (see {@link MemoryStoreOptions.data}). */
  readonly data: MemoryStoreData;
}

/**
 * A {@link Store} that keeps everything in memory: for tests, and as the example to copy when
 * writing your own store. It passes `describeStoreContract`, like `@sheepdog/store-sqlite`.
 *
 * Every method is `async`, so that a failure is a rejection and never a synchronous throw;
 * bytes are copied in and out, so that callers may reuse their buffers.
 *
 * @example
 * ```ts
 * await using store = memoryStore();
 * const { id } = await store.createRequest({ func, ns, args: [a0, a1] });
 * await store.putResult(id, 0, result0);
 * ```
 */
export function memoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  const data: MemoryStoreData = options.data ?? { nextId: 1, requests: new Map() };
  let closed = false;
  const open = (): MemoryStoreData => {
    if (closed) {
      throw new SheepdogError("CLOSED", source, "This memory store is closed. Open a new one.");
    }
    return data;
  };
  const request = (id: RequestId): MemoryRequest => findRequest(open(), id);
  const close = async (): Promise<void> => {
    closed = true;
  };
  const watchers = new ReportWatchers();
  /** Stores `reports` of request `id` by `put`, and tells the watchers of those stored. */
  const told = (id: RequestId, reports: StoreReport[], put: () => boolean[]): boolean[] => {
    const stored = put();
    watchers.tell(id, reports, stored);
    return stored;
  };

  return {
    data,
    createRequest: async (input) => addRequest(open(), input),
    getRequest: async (id) => infoOf(request(id)),
    getArgs: async (id, start, count = 1) => argsOf(request(id), start, count),
    unreported: async (id, start, count) => unreportedOf(request(id), start, count),
    putResult: async (id, index, result) =>
      told(id, [{ index, kind: "result", value: result }], () => [
        putResult(request(id), index, result),
      ])[0] as boolean,
    putError: async (id, index, error, options) =>
      told(
        id,
        [{ index, kind: "error", value: error, provisional: options?.provisional === true }],
        () => [putError(request(id), index, error, options)],
      )[0] as boolean,
    putReports: async (id, reports) =>
      told(id, [...reports], () => putReports(request(id), reports)),
    resetTasks: async (id, indices) => resetTasks(request(id), indices),
    updateMeta: async (id, patch) => updateMeta(request(id), patch),
    counts: async (id) => countsOf(request(id)),
    getResults: async (id) => resultsOf(request(id)),
    getResultRange: async (id, start, count) => resultRangeOf(request(id), start, count),
    getErrors: async (id) => errorsOf(request(id)),
    getTaskFacts: async (id, start, count) => taskFactsOf(request(id), start, count),
    getLogs: async (id, start, count) => logsOf(request(id), start, count),
    watchReports: (listener) => watchers.watch(listener),
    listRequests: async () => [...open().requests.values()].map(summaryOf),
    close,
    [Symbol.asyncDispose]: close,
  };
}

// What follows works on the data of one store: each function is one method, or a check.

function findRequest(data: MemoryStoreData, id: RequestId): MemoryRequest {
  const found = data.requests.get(id);
  if (!found) {
    throw new SheepdogError("REQUEST_NOT_FOUND", source, `There is no request ${String(id)}.`);
  }
  return found;
}

/** Stores a new request, with copies of its bytes and meta, under the next id. */
function addRequest(data: MemoryStoreData, input: NewRequest): CreatedRequest {
  const args: Uint8Array[] = [];
  for (const arg of input.args) args.push(bytes(arg, `argument ${args.length}`).slice());
  const func = bytes(input.func, "func").slice();
  const ns = bytes(input.ns, "ns").slice();
  const meta = jsonCopy(input.meta ?? {});
  const token = newToken();
  const id = data.nextId++;
  data.requests.set(id, {
    info: {
      id,
      func,
      ns,
      tasks: args.length,
      tokenHash: hashToken(token),
      createdAt: Date.now(),
      meta,
    },
    args,
    reports: new Map(),
    results: 0,
    errors: 0,
  });
  return { id, token };
}

function infoOf({ info }: MemoryRequest): RequestInfo {
  return { ...info, func: info.func.slice(), ns: info.ns.slice(), meta: jsonCopy(info.meta) };
}

function argsOf(req: MemoryRequest, start: number, count: number): Uint8Array[] {
  checkRange(req, start, count);
  return req.args.slice(start, start + count).map((arg) => arg.slice());
}

function unreportedOf(req: MemoryRequest, start: number, count: number): number[] {
  checkRange(req, start, count);
  const missing: number[] = [];
  for (let index = start; index < start + count; index++) {
    if (!req.reports.has(index)) missing.push(index);
  }
  return missing;
}

function putResult(req: MemoryRequest, index: number, result: Uint8Array): boolean {
  checkIndex(req, index);
  return report(req, { index, kind: "result", value: bytes(result, "result") });
}

function putError(
  req: MemoryRequest,
  index: number,
  error: string,
  options: PutErrorOptions = {},
): boolean {
  checkIndex(req, index);
  const provisional = options.provisional === true;
  return report(req, { index, kind: "error", value: text(error), provisional });
}

/** Checks the whole batch before storing any of it. */
function putReports(req: MemoryRequest, reports: readonly StoreReport[]): boolean[] {
  for (const entry of reports) {
    checkIndex(req, entry.index);
    if (entry.kind === "result") bytes(entry.value, "result");
    else text(entry.value);
    if (entry.kind === "error" && !["boolean", "undefined"].includes(typeof entry.provisional)) {
      throw new SheepdogError("INVALID_INPUT", source, "provisional must be a boolean.");
    }
    const problem = entry.facts === undefined ? undefined : taskFactsProblem(entry.facts);
    if (problem !== undefined) throw new SheepdogError("INVALID_INPUT", source, problem);
  }
  return reports.map((entry) => report(req, entry));
}

/**
 * Stores the first report of a task (a copy of it), or a real report in place of a provisional
 * error, and says whether it was stored.
 */
function report(req: MemoryRequest, entry: StoreReport): boolean {
  const found = req.reports.get(entry.index);
  const provisional = entry.kind === "error" && entry.provisional === true;
  if (found && (provisional || !("error" in found) || !found.provisional)) return false;
  if (found) req.errors -= 1;
  const facts = entry.facts && copyFacts(entry.facts);
  if (entry.kind === "result") {
    req.reports.set(entry.index, { result: entry.value.slice(), ...(facts && { facts }) });
    req.results += 1;
  } else {
    req.reports.set(entry.index, {
      error: entry.value,
      ...(provisional && { provisional: true as const }),
      ...(facts && { facts }),
    });
    req.errors += 1;
  }
  return true;
}

/** A copy of the fields of `facts` that are facts, or `undefined` when none is set. */
function copyFacts(facts: TaskFacts): TaskFacts | undefined {
  const copy: TaskFacts = {};
  if (facts.startedAt !== undefined) copy.startedAt = facts.startedAt;
  if (facts.endedAt !== undefined) copy.endedAt = facts.endedAt;
  if (facts.host !== undefined) copy.host = facts.host;
  if (facts.peakMemoryBytes !== undefined) copy.peakMemoryBytes = facts.peakMemoryBytes;
  if (facts.attempt !== undefined) copy.attempt = facts.attempt;
  if (facts.log !== undefined) copy.log = facts.log;
  return Object.keys(copy).length === 0 ? undefined : copy;
}

function resetTasks(req: MemoryRequest, indices: readonly number[]): void {
  for (const index of indices) checkIndex(req, index);
  for (const index of indices) {
    const found = req.reports.get(index);
    if (!found) continue;
    req.reports.delete(index);
    if ("result" in found) req.results -= 1;
    else req.errors -= 1;
  }
}

function updateMeta(req: MemoryRequest, patch: RequestMeta): void {
  req.info.meta = { ...req.info.meta, ...jsonCopy(patch) };
}

function countsOf(req: MemoryRequest): RequestCounts {
  return { tasks: req.info.tasks, results: req.results, errors: req.errors };
}

function resultsOf(req: MemoryRequest): TaskResult[] {
  return req.args.map((args, index) => ({
    index,
    args: args.slice(),
    result: resultOf(req, index),
  }));
}

function resultRangeOf(req: MemoryRequest, start: number, count: number): (Uint8Array | null)[] {
  checkRange(req, start, count);
  const results: (Uint8Array | null)[] = [];
  for (let index = start; index < start + count; index++) results.push(resultOf(req, index));
  return results;
}

/** A copy of the result of a task, or null if it has none (no report, or an error). */
function resultOf(req: MemoryRequest, index: number): Uint8Array | null {
  const found = req.reports.get(index);
  return found && "result" in found ? found.result.slice() : null;
}

/** The range `start .. start + count - 1`, by default the rest of the request, checked. */
function rangeOf(req: MemoryRequest, start = 0, count?: number): [number, number] {
  const size = count ?? req.info.tasks - start;
  checkRange(req, start, size);
  return [start, start + size];
}

function taskFactsOf(
  req: MemoryRequest,
  start?: number,
  count?: number,
): (TaskFactsEntry | null)[] {
  const [from, to] = rangeOf(req, start, count);
  const entries: (TaskFactsEntry | null)[] = [];
  for (let index = from; index < to; index++) {
    const found = req.reports.get(index);
    if (!found) {
      entries.push(null);
      continue;
    }
    const { log, ...facts } = found.facts ?? {};
    entries.push({
      kind: "result" in found ? "result" : "error",
      ...("error" in found && found.provisional && { provisional: true as const }),
      ...facts,
      hasLog: log !== undefined,
    });
  }
  return entries;
}

function logsOf(req: MemoryRequest, start?: number, count?: number): TaskLog[] {
  const [from, to] = rangeOf(req, start, count);
  const logs: TaskLog[] = [];
  for (let index = from; index < to; index++) {
    const log = req.reports.get(index)?.facts?.log;
    if (log !== undefined) logs.push({ index, log });
  }
  return logs;
}

function errorsOf(req: MemoryRequest): TaskError[] {
  const errors: TaskError[] = [];
  for (const [index, found] of [...req.reports].sort((a, b) => a[0] - b[0])) {
    if ("error" in found) {
      const args = (req.args[index] as Uint8Array).slice();
      errors.push({
        index,
        args,
        error: found.error,
        ...(found.provisional && { provisional: true as const }),
      });
    }
  }
  return errors;
}

function summaryOf(req: MemoryRequest): RequestSummary {
  return {
    id: req.info.id,
    createdAt: req.info.createdAt,
    meta: jsonCopy(req.info.meta),
    tasks: req.info.tasks,
    results: req.results,
    errors: req.errors,
  };
}

function checkIndex(req: MemoryRequest, index: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= req.info.tasks) {
    throw new SheepdogError(
      "TASK_NOT_FOUND",
      source,
      `Request ${req.info.id} has no task ${String(index)}: its tasks are 0 to ${req.info.tasks - 1}.`,
    );
  }
}

function checkRange(req: MemoryRequest, start: number, count: number): void {
  const inside = Number.isInteger(start) && Number.isInteger(count) && start >= 0 && count >= 0;
  if (!inside || start + count > req.info.tasks) {
    throw new SheepdogError(
      "TASK_NOT_FOUND",
      source,
      `Request ${req.info.id} has no tasks ${String(start)} to ${String(start + count - 1)}: its tasks are 0 to ${req.info.tasks - 1}.`,
    );
  }
}

function bytes(value: unknown, what: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  throw new SheepdogError("INVALID_INPUT", source, `The ${what} must be a Uint8Array.`);
}

function text(value: unknown): string {
  if (typeof value === "string") return value;
  throw new SheepdogError("INVALID_INPUT", source, "An error report must be a string.");
}

/** A deep copy through JSON, which is how a persistent store would keep meta. */
function jsonCopy(meta: RequestMeta): RequestMeta {
  const json = JSON.stringify(meta);
  const copy: unknown = json === undefined ? undefined : JSON.parse(json);
  if (typeof copy !== "object" || copy === null || Array.isArray(copy)) {
    throw new SheepdogError("INVALID_INPUT", source, "Request meta must be a plain JSON object.");
  }
  return copy as RequestMeta;
}
