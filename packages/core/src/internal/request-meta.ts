import type { JobRef, RequestId, Store } from "@sheepdog/contracts";

/* What core keeps in a request's meta beyond the store's own fields, read and written here. */

/** The jobs of every attempt of a request, first to last (as its meta lists them). */
export function jobsOf(meta: Record<string, unknown>): JobRef[] {
  if (Array.isArray(meta.jobs)) return meta.jobs as JobRef[];
  return meta.job ? [meta.job as JobRef] : [];
}

/**
 * Records in a request's meta, as `cancelled: { at, reason }` (`at` in milliseconds since the
 * epoch), that its job was cancelled before every task reported, so that listings show it as
 * cancelled rather than in progress. `reason` is "cancelled" (cancelRequest), "interrupted"
 * (an aborted map) or "failed" (a map whose submission or wait failed). A store that cannot
 * record it (a read-only dbfile) leaves the request as it was: the job is cancelled all the same.
 */
export async function markCancelled(
  store: Store,
  id: RequestId,
  reason: "cancelled" | "interrupted" | "failed",
): Promise<void> {
  await store.updateMeta(id, { cancelled: { at: Date.now(), reason } }).catch(() => {});
}
