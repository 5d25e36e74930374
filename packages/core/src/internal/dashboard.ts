import type { RequestId } from "@sheepdog/contracts";
import type { Dashboard } from "@sheepdog/dashboard";
import type { DashboardOptions } from "../types.js";
import type { Context } from "./context.js";

/** How the dashboard's buttons reach a request's cluster: a context for the request. */
export type RequestContextOf = (id: RequestId) => Promise<Context>;

/**
 * A dashboard of the context's store (`@sheepdog/dashboard`, loaded only when asked for), whose
 * cancel button cancels a request's job and whose retry button runs its failed tasks again as
 * a new request, each through the context `contextOf` gives for that request.
 */
export async function openDashboard(
  context: Context,
  contextOf: RequestContextOf,
  retry: (context: Context, id: RequestId) => Promise<RequestId>,
  options: DashboardOptions & { title?: string },
): Promise<Dashboard> {
  const [{ createDashboard }, ops] = await Promise.all([
    import("@sheepdog/dashboard"),
    import("./request-ops.js"),
  ]);
  return createDashboard({
    store: context.store,
    ...(options.title !== undefined && { title: options.title }),
    listen: {
      ...(options.host !== undefined && { host: options.host }),
      ...(options.port !== undefined && { port: options.port }),
    },
    actions: {
      cancel: async (id) => {
        await ops.cancelRequest(await contextOf(id), id);
      },
      retryFailed: async (id) => {
        await retry(await contextOf(id), id);
      },
    },
  });
}

/** `map`'s dashboard option: a dashboard for the map's store, or none. */
export function dashboardOption(value: boolean | DashboardOptions | undefined) {
  if (value === undefined || value === false) return undefined;
  return value === true ? {} : value;
}
