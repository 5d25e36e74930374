import type { Store } from "@sheepdog/contracts";

type Method = Exclude<keyof Store, never>;

/**
 * Wraps a store to count calls per method. With `batch: false` the wrapper has no
 * `putReports`, so that the server's one-by-one path is used.
 */
export function countingStore(
  inner: Store,
  options: { batch?: boolean } = {},
): { store: Store; calls: Partial<Record<Method, number>> } {
  const calls: Partial<Record<Method, number>> = {};
  const store = {} as Record<string, unknown>;
  const methods: Method[] = [
    "createRequest",
    "getRequest",
    "getArgs",
    "putResult",
    "putError",
    "putReports",
    "resetTasks",
    "updateMeta",
    "counts",
    "getResults",
    "getErrors",
    "getTaskFacts",
    "getLogs",
    "listRequests",
    "close",
  ];
  for (const method of methods) {
    const fn = inner[method] as ((...args: unknown[]) => unknown) | undefined;
    if (fn === undefined || (method === "putReports" && options.batch === false)) continue;
    store[method] = (...args: unknown[]) => {
      calls[method] = (calls[method] ?? 0) + 1;
      return fn.apply(inner, args);
    };
  }
  return { store: store as unknown as Store, calls };
}
