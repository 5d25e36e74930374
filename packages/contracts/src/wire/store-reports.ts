import type { RequestId, Store, StoreReport } from "../store.js";

/**
 * Stores a batch of reports of one request: through `store.putReports` when the store has it
 * (and there is more than one report, or one with facts), else with one `putResult` /
 * `putError` per report, in order (a store without `putReports` keeps no facts). Resolves to one flag per report, `true` where it was stored now and `false` where
 * its task already had a report (the first report wins). Rejects as the store does; with the
 * loop, the reports before the failing one stay stored.
 *
 * @example
 * ```ts
 * const stored = await storeReports(store, id, [{ index: 0, kind: "error", value: "Traceback ..." }]);
 * ```
 */
export async function storeReports(
  store: Store,
  request: RequestId,
  reports: readonly StoreReport[],
): Promise<boolean[]> {
  if (store.putReports !== undefined && (reports.length > 1 || reports[0]?.facts !== undefined)) {
    const stored = await store.putReports(request, reports);
    return reports.map((_, i) => stored[i] === true);
  }
  const stored: boolean[] = [];
  for (const report of reports) {
    stored.push(
      report.kind === "result"
        ? await store.putResult(request, report.index, report.value)
        : await store.putError(
            request,
            report.index,
            report.value,
            report.provisional ? { provisional: true } : undefined,
          ),
    );
  }
  return stored;
}
