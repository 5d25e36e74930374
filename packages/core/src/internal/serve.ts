import type { JobRef, RequestId } from "@sheepdog/contracts";
import type { SheepdogServer } from "@sheepdog/server";
import type { ResolvedConfig } from "../config.js";
import type { Context } from "./context.js";
import { reopenRelay } from "./routes.js";

/** What a server started by hand serves, and on which port and address. */
export interface ServeRequest {
  port?: number | undefined;
  listen?: string | undefined;
  request?: RequestId | undefined;
}

function jobScheduler(job: unknown): string | undefined {
  const scheduler = (job as Partial<JobRef> | undefined)?.scheduler;
  return typeof scheduler === "string" ? scheduler : undefined;
}

/**
 * A server for the context's store on `options.port`, the request's port, or the configured
 * one. When the request's workers were given a relay on the head node (its `host:port` is in
 * the request's meta), the relay is started again on its port, over the request's cluster,
 * for as long as the server runs.
 */
export async function serveRequest(
  context: Context,
  config: ResolvedConfig,
  options: ServeRequest,
): Promise<SheepdogServer> {
  let port = options.port;
  let relay: string | undefined;
  let scheduler: string | undefined;
  if (options.request !== undefined) {
    const { meta } = await context.store.getRequest(options.request);
    if (port === undefined && typeof meta.port === "number") port = meta.port;
    if (typeof meta.relay === "string") relay = meta.relay;
    scheduler = jobScheduler(meta.job);
  }
  const server = await context.runtime.server(
    context,
    port ?? config.port,
    options.listen ?? "127.0.0.1",
  );
  if (relay === undefined) return server;
  try {
    const lease = await context.openCluster(scheduler);
    const running = await reopenRelay(lease.cluster.remote, server, relay).catch(
      async (error: unknown) => {
        await lease.release();
        throw error;
      },
    );
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> => {
      closing ??= (async () => {
        await running.close();
        await lease.release();
        await server.close();
      })();
      return closing;
    };
    return { ...server, close, [Symbol.asyncDispose]: close };
  } catch (error) {
    await server.close();
    throw error;
  }
}
