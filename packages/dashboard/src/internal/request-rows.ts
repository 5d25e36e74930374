import type { RequestId, RequestSummary, Store } from "@sheepdog/contracts";
import type { RequestRow } from "./api-types.js";
import type { FunctionInfo } from "./func-info.js";
import { functionInfo } from "./func-info.js";
import type { ReportTimes } from "./report-times.js";
import { hostOf, latestJobOf, stateOf } from "./request-meta.js";
import type { RequestWatch } from "./request-watch.js";

/** Builds the rows of the list of requests from the watch's counts and each request's function. */
export class RequestRows {
  readonly #store: Store;
  readonly #watch: RequestWatch;
  /** A request's function never changes: it is read once. */
  readonly #functions = new Map<RequestId, Promise<FunctionInfo>>();

  constructor(store: Store, watch: RequestWatch) {
    this.#store = store;
    this.#watch = watch;
  }

  /** The name and source of request `id`'s function (rejects as `getRequest` does). */
  functionOf(id: RequestId): Promise<FunctionInfo> {
    let info = this.#functions.get(id);
    if (!info) {
      info = this.#store.getRequest(id).then((request) => functionInfo(request.func));
      void info.catch(() => this.#functions.delete(id));
      this.#functions.set(id, info);
    }
    return info;
  }

  /** Every request's row, oldest first. */
  async list(now: number): Promise<RequestRow[]> {
    const rows = await this.#watch.rows();
    return Promise.all(rows.map((row) => this.rowOf(row, now)));
  }

  /**
   * One request's row from its summary; `times`, the times its store records of its reports,
   * give a finished request its average throughput.
   */
  async rowOf(
    summary: RequestSummary,
    now: number,
    times: ReportTimes | null = null,
  ): Promise<RequestRow> {
    const { name } = await this.functionOf(summary.id);
    const state = stateOf(summary);
    const pending = Math.max(0, summary.tasks - summary.results - summary.errors);
    const running = state === "running";
    const throughput = running
      ? (this.#watch.history(summary.id)?.throughput(now) ?? null)
      : (times?.averageThroughput() ?? null);
    return {
      id: summary.id,
      name,
      createdAt: summary.createdAt,
      host: hostOf(summary.meta),
      ...latestJobOf(summary.meta),
      tasks: summary.tasks,
      done: summary.results,
      failed: summary.errors,
      pending,
      throughput,
      etaSeconds:
        running && throughput !== null && throughput > 0 ? Math.ceil(pending / throughput) : null,
      state,
    };
  }
}
