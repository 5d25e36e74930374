import type {
  CreatedRequest,
  NewRequest,
  RequestCounts,
  RequestId,
  RequestInfo,
  RequestMeta,
  RequestSummary,
  Store,
  TaskError,
  TaskResult,
} from "@sheepdog/contracts";
import { hashToken, newToken, SheepdogError } from "@sheepdog/contracts";

interface Held {
  info: RequestInfo;
  args: Uint8Array[];
  reports: Map<number, { result: Uint8Array } | { error: string }>;
}

/**
 * A small in-memory Store for the server's unit tests, with call counters. The integration
 * tests use the real SQLite store.
 */
export class TestStore implements Store {
  readonly calls = { getRequest: 0, getArgs: 0, putResult: 0, putError: 0 };
  readonly #requests = new Map<RequestId, Held>();
  #nextId = 1;

  #held(id: RequestId): Held {
    const held = this.#requests.get(id);
    if (!held) throw new SheepdogError("REQUEST_NOT_FOUND", "test", `No request ${id}.`);
    return held;
  }

  #put(id: RequestId, index: number, report: { result: Uint8Array } | { error: string }) {
    const held = this.#held(id);
    if (index < 0 || index >= held.info.tasks) {
      throw new SheepdogError("TASK_NOT_FOUND", "test", `No task ${index}.`);
    }
    if (held.reports.has(index)) return false;
    held.reports.set(index, report);
    return true;
  }

  async createRequest(request: NewRequest): Promise<CreatedRequest> {
    const id = this.#nextId++;
    const token = newToken();
    const args = [...request.args];
    this.#requests.set(id, {
      info: {
        id,
        func: request.func,
        ns: request.ns,
        tasks: args.length,
        tokenHash: hashToken(token),
        createdAt: Date.now(),
        meta: { ...request.meta },
      },
      args,
      reports: new Map(),
    });
    return { id, token };
  }

  async getRequest(id: RequestId): Promise<RequestInfo> {
    this.calls.getRequest += 1;
    return this.#held(id).info;
  }

  async getArgs(id: RequestId, start: number, count = 1): Promise<Uint8Array[]> {
    this.calls.getArgs += 1;
    const held = this.#held(id);
    if (start < 0 || count < 0 || start + count > held.info.tasks) {
      throw new SheepdogError("TASK_NOT_FOUND", "test", "Range outside the request.");
    }
    return held.args.slice(start, start + count);
  }

  async putResult(id: RequestId, index: number, result: Uint8Array): Promise<boolean> {
    this.calls.putResult += 1;
    return this.#put(id, index, { result: result.slice() });
  }

  async putError(id: RequestId, index: number, error: string): Promise<boolean> {
    this.calls.putError += 1;
    return this.#put(id, index, { error });
  }

  async updateMeta(id: RequestId, patch: RequestMeta): Promise<void> {
    Object.assign(this.#held(id).info.meta, patch);
  }

  async counts(id: RequestId): Promise<RequestCounts> {
    const held = this.#held(id);
    let results = 0;
    let errors = 0;
    for (const report of held.reports.values()) {
      if ("result" in report) results += 1;
      else errors += 1;
    }
    return { tasks: held.info.tasks, results, errors };
  }

  async getResults(id: RequestId): Promise<TaskResult[]> {
    const held = this.#held(id);
    return held.args.map((args, index) => {
      const report = held.reports.get(index);
      return { index, args, result: report && "result" in report ? report.result : null };
    });
  }

  async getErrors(id: RequestId): Promise<TaskError[]> {
    const held = this.#held(id);
    const errors: TaskError[] = [];
    held.args.forEach((args, index) => {
      const report = held.reports.get(index);
      if (report && "error" in report) errors.push({ index, args, error: report.error });
    });
    return errors;
  }

  async listRequests(): Promise<RequestSummary[]> {
    return Promise.all(
      [...this.#requests.values()].map(async ({ info }) => ({
        id: info.id,
        createdAt: info.createdAt,
        meta: info.meta,
        ...(await this.counts(info.id)),
      })),
    );
  }

  async close(): Promise<void> {}
}
