import type { IncomingMessage, ServerResponse } from "node:http";
import type { RequestId } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type { H3Event } from "h3";
import { H3, toNodeHandler } from "h3";
import type { RequestList, Session } from "./api-types.js";
import type { Assets } from "./assets.js";
import type { EventStreams } from "./event-streams.js";
import type { Gate } from "./gate.js";
import type { RequestDetails } from "./request-details.js";
import type { RequestRows } from "./request-rows.js";
import type { RequestWatch } from "./request-watch.js";

/** The actions the page may ask for (see `DashboardActions`). */
export interface AppActions {
  cancel?: (id: RequestId) => Promise<void>;
  retryFailed?: (id: RequestId) => Promise<void>;
}

/** What the routes work with. */
export interface AppContext {
  gate: Gate;
  assets: Assets;
  watch: RequestWatch;
  rows: RequestRows;
  details: RequestDetails;
  streams: EventStreams;
  actions: AppActions;
  title: string | null;
  /** Told about failures that are not the client's fault. */
  onError: (error: unknown) => void;
}

/** Headers on every answer: nothing cached, framed, sniffed, or loaded from elsewhere. */
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

const ID_PATTERN = /^[1-9][0-9]{0,14}$/;
const INDEX_PATTERN = /^(0|[1-9][0-9]{0,14})$/;

function json(value: unknown, status = 200): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json; charset=utf-8" },
  });
}

function notFound(): Response {
  return json({ error: "Not found." }, 404);
}

function paramOf(event: H3Event, name: string, pattern: RegExp): number | undefined {
  const value = event.context.params?.[name];
  return value !== undefined && pattern.test(value) ? Number(value) : undefined;
}

/** A failure as an answer: 404 for an unknown request or task, else 500 (and onError). */
function failure(error: unknown, onError: (error: unknown) => void): Response {
  if (SheepdogError.isInstance(error)) {
    if (error.code === "REQUEST_NOT_FOUND" || error.code === "TASK_NOT_FOUND") return notFound();
  }
  onError(error);
  return json({ error: "The dashboard could not read the store." }, 500);
}

function readRoutes(app: H3, ctx: AppContext): void {
  const { onError } = ctx;
  app.get("/api/session", () => {
    const session: Session = {
      actionKey: ctx.gate.actionKey,
      actions: {
        cancel: ctx.actions.cancel !== undefined,
        retryFailed: ctx.actions.retryFailed !== undefined,
      },
      title: ctx.title,
    };
    return json(session);
  });
  app.get("/api/requests", async () => {
    try {
      const now = Date.now();
      const list: RequestList = { requests: await ctx.rows.list(now), now };
      return json(list);
    } catch (error) {
      return failure(error, onError);
    }
  });
  app.get("/api/requests/:id", async (event) => {
    const id = paramOf(event, "id", ID_PATTERN);
    if (id === undefined) return notFound();
    const since = event.url.searchParams.get("since") ?? undefined;
    return ctx.details
      .detail(id, Date.now(), since)
      .then(json, (error: unknown) => failure(error, onError));
  });
  app.get("/api/requests/:id/tasks/:index", async (event) => {
    const id = paramOf(event, "id", ID_PATTERN);
    const index = paramOf(event, "index", INDEX_PATTERN);
    if (id === undefined || index === undefined) return notFound();
    return ctx.details.task(id, index).then(json, (error: unknown) => failure(error, onError));
  });
  app.get("/api/events", (event) => ctx.streams.open(event));
}

function actionRoute(ctx: AppContext, name: keyof AppActions) {
  return async (event: H3Event): Promise<Response> => {
    const action = ctx.actions[name];
    const id = paramOf(event, "id", ID_PATTERN);
    if (action === undefined || id === undefined) return notFound();
    try {
      await ctx.rows.functionOf(id);
    } catch (error) {
      return failure(error, ctx.onError);
    }
    try {
      await action(id);
    } catch (error) {
      if (!SheepdogError.isInstance(error)) ctx.onError(error);
      const said = SheepdogError.isInstance(error) ? error.text : "The action failed.";
      return json({ error: said }, 500);
    }
    await ctx.watch.lookNow();
    return json({ ok: true });
  };
}

function assetRoutes(app: H3, ctx: AppContext): void {
  const serve = async (event: H3Event): Promise<Response> => {
    const asset = await ctx.assets.get(event.url.pathname);
    if (!asset) return notFound();
    return new Response(new Uint8Array(asset.body), { headers: { "content-type": asset.type } });
  };
  app.get("/", serve);
  app.get("/assets/**", serve);
}

/** The dashboard's h3 app: the gate before every route, then the page, its API and events. */
export function dashboardApp(ctx: AppContext): H3 {
  const app = new H3({
    silent: true,
    onError(error) {
      const status = error.status >= 400 && error.status <= 599 ? error.status : 500;
      if (status >= 500) ctx.onError(error.cause ?? error);
      return json({ error: status === 404 ? "Not found." : "Bad request." }, status);
    },
  });
  app.use((event, next) => {
    const verdict = ctx.gate.check({
      method: event.req.method,
      url: event.url,
      headers: event.req.headers,
    });
    return verdict.pass ? next() : verdict.response;
  });
  readRoutes(app, ctx);
  app.post("/api/requests/:id/cancel", actionRoute(ctx, "cancel"));
  app.post("/api/requests/:id/retry-failed", actionRoute(ctx, "retryFailed"));
  assetRoutes(app, ctx);
  app.all("/**", () => notFound());
  return app;
}

/** The Node request listener: the security headers on every answer, then the h3 app. */
export function nodeListener(app: H3): (req: IncomingMessage, res: ServerResponse) => void {
  const handler = toNodeHandler(app);
  return (req, res) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    void handler(req, res);
  };
}
