import type { Store, StoreReport } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";

/**
 * What a {@link fillingStore} refuses: nothing, the reports workers send (a store that cannot
 * take them: the server answers 503 until the workers give up), or every write (a full disk).
 */
export type Refusing = "nothing" | "reports" | "writes";

/** A store whose writes fail while its disk is "full", and the switch that fills it. */
export interface FillingStore {
  store: Store;
  refuse(what: Refusing): void;
}

/**
 * Wraps a real store so that its writes fail with STORE_IO, as SQLite's do on a full disk,
 * while `refuse` says so; reads always work. With "reports", an inferred (provisional) error is
 * still written, as it would be by a store that has room for it alone.
 */
export function fillingStore(inner: Store): FillingStore {
  let refusing: Refusing = "nothing";
  const full = () =>
    Promise.reject(
      new SheepdogError("STORE_IO", "test", "The disk is full. Free some space, then try again."),
    );
  const real = (report: StoreReport) => !(report.kind === "error" && report.provisional);
  const refuses = (reports: readonly StoreReport[]) =>
    refusing === "writes" || (refusing === "reports" && reports.some(real));
  const store: Store = {
    createRequest: (request) => inner.createRequest(request),
    getRequest: (id) => inner.getRequest(id),
    getArgs: (id, start, count) => inner.getArgs(id, start, count),
    putResult: (id, index, value) =>
      refuses([{ index, kind: "result", value }]) ? full() : inner.putResult(id, index, value),
    putError: (id, index, value, options) =>
      refuses([{ index, kind: "error", value, provisional: options?.provisional === true }])
        ? full()
        : inner.putError(id, index, value, options),
    putReports: (id, reports) =>
      refuses(reports)
        ? full()
        : (inner.putReports as NonNullable<Store["putReports"]>)(id, reports),
    updateMeta: (id, patch) => (refusing === "writes" ? full() : inner.updateMeta(id, patch)),
    unreported: (id, start, count) => inner.unreported(id, start, count),
    counts: (id) => inner.counts(id),
    getResults: (id) => inner.getResults(id),
    getErrors: (id) => inner.getErrors(id),
    listRequests: () => inner.listRequests(),
    close: () => inner.close(),
  };
  return { store, refuse: (what) => (refusing = what) };
}
