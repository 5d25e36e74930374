import { SheepdogError } from "../errors.js";
import { source } from "../internal/source.js";
import type {
  CreatedRequest,
  NewRequest,
  RequestCounts,
  RequestId,
  RequestInfo,
  RequestMeta,
  RequestSummary,
  Store,
  StoreReport,
  TaskError,
  TaskResult,
} from "../store.js";
import { hashToken, newToken } from "../token.js";

/** What a memory store keeps of one request. */
interface MemoryRequest {
  info: RequestInfo;
  args: Uint8Array[];
  /** Task index -> its first report. */
  reports: Map<number, { result: Uint8Array } | { error: string }>;
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

  function open(): MemoryStoreData {
    if (closed) {
      throw new SheepdogError("CLOSED", source, "This memory store is closed. Open a new one.");
    }
    return data;
  }

  function request(id: RequestId): MemoryRequest {
    const found = open().requests.get(id);
    if (!found) {
      throw new SheepdogError("REQUEST_NOT_FOUND", source, `There is no request ${String(id)}.`);
    }
    return found;
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

  function report(req: MemoryRequest, entry: StoreReport): boolean {
    if (req.reports.has(entry.index)) return false;
    if (entry.kind === "result") {
      req.reports.set(entry.index, { result: entry.value.slice() });
      req.results += 1;
    } else {
      req.reports.set(entry.index, { error: entry.value });
      req.errors += 1;
    }
    return true;
  }

  return {
    data,

    async createRequest(input: NewRequest): Promise<CreatedRequest> {
      open();
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
    },

    async getRequest(id) {
      const { info } = request(id);
      return { ...info, func: info.func.slice(), ns: info.ns.slice(), meta: jsonCopy(info.meta) };
    },

    async getArgs(id, start, count = 1) {
      const req = request(id);
      checkRange(req, start, count);
      return req.args.slice(start, start + count).map((arg) => arg.slice());
    },

    async unreported(id, start, count) {
      const req = request(id);
      checkRange(req, start, count);
      const missing: number[] = [];
      for (let index = start; index < start + count; index++) {
        if (!req.reports.has(index)) missing.push(index);
      }
      return missing;
    },

    async putResult(id, index, result) {
      const req = request(id);
      checkIndex(req, index);
      return report(req, { index, kind: "result", value: bytes(result, "result") });
    },

    async putError(id, index, error) {
      const req = request(id);
      checkIndex(req, index);
      return report(req, { index, kind: "error", value: text(error) });
    },

    async putReports(id, reports) {
      const req = request(id);
      // Check the whole batch before storing any of it.
      for (const entry of reports) {
        checkIndex(req, entry.index);
        if (entry.kind === "result") bytes(entry.value, "result");
        else text(entry.value);
      }
      return reports.map((entry) => report(req, entry));
    },

    async resetTasks(id, indices) {
      const req = request(id);
      for (const index of indices) checkIndex(req, index);
      for (const index of indices) {
        const found = req.reports.get(index);
        if (!found) continue;
        req.reports.delete(index);
        if ("result" in found) req.results -= 1;
        else req.errors -= 1;
      }
    },

    async updateMeta(id, patch) {
      const req = request(id);
      req.info.meta = { ...req.info.meta, ...jsonCopy(patch) };
    },

    async counts(id): Promise<RequestCounts> {
      const req = request(id);
      return { tasks: req.info.tasks, results: req.results, errors: req.errors };
    },

    async getResults(id): Promise<TaskResult[]> {
      const req = request(id);
      return req.args.map((args, index) => {
        const found = req.reports.get(index);
        const result = found && "result" in found ? found.result.slice() : null;
        return { index, args: args.slice(), result };
      });
    },

    async getResultRange(id, start, count): Promise<(Uint8Array | null)[]> {
      const req = request(id);
      checkRange(req, start, count);
      const results: (Uint8Array | null)[] = [];
      for (let index = start; index < start + count; index++) {
        const found = req.reports.get(index);
        results.push(found && "result" in found ? found.result.slice() : null);
      }
      return results;
    },

    async getErrors(id): Promise<TaskError[]> {
      const req = request(id);
      const errors: TaskError[] = [];
      for (const [index, found] of [...req.reports].sort((a, b) => a[0] - b[0])) {
        if ("error" in found) {
          errors.push({ index, args: (req.args[index] as Uint8Array).slice(), error: found.error });
        }
      }
      return errors;
    },

    async listRequests(): Promise<RequestSummary[]> {
      return [...open().requests.values()].map((req) => ({
        id: req.info.id,
        createdAt: req.info.createdAt,
        meta: jsonCopy(req.info.meta),
        tasks: req.info.tasks,
        results: req.results,
        errors: req.errors,
      }));
    },

    async close() {
      closed = true;
    },

    async [Symbol.asyncDispose]() {
      closed = true;
    },
  };
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
