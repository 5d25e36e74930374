import type { IncomingMessage, ServerResponse } from "node:http";
import { PROOF_HEADER, WIRE_VERSION } from "@sheepdog/contracts";
import type { H3Event } from "h3";
import { H3, toNodeHandler } from "h3";
import type { Route, WireEvent, WireRoutes } from "./routes.js";
import type { Reply } from "./wire-error.js";
import { errorReply, errorResponse, genericMessage, toResponse } from "./wire-error.js";

/** A Node request listener, as `http.createServer` takes it. */
export type NodeListener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The worker routes, in their plain spelling (no query, no encoded characters): a GET of a
 * task, a POST of reports. They are answered straight from Node's request, skipping h3's
 * web Request and Response, which cost more than the route's own work. Anything else, these
 * paths with another method or spelling included, goes through h3.
 */
const DIRECT_ROUTE = /^\/v2\/requests\/([1-9][0-9]{0,14})\/tasks\/([1-9][0-9]{0,14})(\/reports)?$/;

/** The h3-shaped view of a Node request on a direct route. */
function directEvent(req: IncomingMessage, request: string, task: string): WireEvent {
  return {
    context: { params: { request, task } },
    req: {
      headers: {
        get(name: string): string | null {
          const value = req.headers[name.toLowerCase()];
          if (value === undefined) return null;
          return Array.isArray(value) ? value.join(", ") : value;
        },
      },
      body: null,
      runtime: { node: { req } },
    },
  };
}

/**
 * The most bytes of a refused post's body that are read (and thrown away) after its refusal is
 * written, before the connection closes. A client such as Python's http.client sends the whole
 * body before it reads the answer: a server that closed while the body was still arriving would
 * reset the connection, and the client would see a broken pipe (which it retries) instead of
 * the refusal (which it acts on, as a worker does on a 413 by turning a result too large into
 * its task's error). Nothing read is kept, so this costs time on the wire, never memory, and
 * the server's request timeout still bounds it; a body larger than this is cut off.
 */
const MAX_DISCARDED_BODY_BYTES = 1024 * 1024 * 1024;

/**
 * Ends `res` once the rest of `req`'s body has arrived, discarding it (see
 * {@link MAX_DISCARDED_BODY_BYTES}), or at once when the client goes away.
 */
function endAfterBody(req: IncomingMessage, res: ServerResponse): void {
  let discarded = 0;
  const finish = () => {
    req.off("data", onData);
    req.off("end", finish);
    req.off("close", finish);
    req.off("error", finish);
    if (!res.writableEnded) res.end();
  };
  const onData = (chunk: Buffer) => {
    discarded += chunk.byteLength;
    if (discarded > MAX_DISCARDED_BODY_BYTES) finish();
  };
  req.on("data", onData);
  req.once("end", finish);
  req.once("close", finish);
  req.once("error", finish);
  req.resume();
}

/**
 * Writes a reply to a Node response (the direct path). A refusal (4xx) of an authenticated
 * worker's request whose body is still arriving is written at once, so that a client that
 * reads while it sends can stop, but the connection stays open until the rest of the body has
 * arrived (see {@link endAfterBody}), so that a client that sends it all first reads the
 * refusal too. Anyone else's refusal closes the connection at once: a stranger holds nothing
 * open here.
 */
function writeReply(res: ServerResponse, reply: Reply, req?: IncomingMessage): void {
  if (res.headersSent || res.destroyed) return;
  const length =
    typeof reply.body === "string" ? Buffer.byteLength(reply.body) : reply.body.byteLength;
  // A reply's headers are its own (made for this answer): the length goes in with them.
  reply.headers["content-length"] = String(length);
  res.writeHead(reply.status, reply.headers);
  const refusal =
    reply.status >= 400 &&
    reply.status < 500 &&
    reply.status !== 408 &&
    reply.headers[PROOF_HEADER] !== undefined;
  if (req === undefined || !refusal || req.complete || req.destroyed || req.readableEnded) {
    res.end(reply.body);
    return;
  }
  res.write(reply.body);
  endAfterBody(req, res);
}

/**
 * Replies held until the loop has handled everything that arrived with them, then written
 * together. Many workers' requests arrive at once; written one by one between the handling of
 * the next, each answer wakes its client's process again, and on a loaded machine those
 * wake-ups cost the server more than the answers (measured with the ingest benchmark: about 12%
 * more round trips per second this way). The wait is the rest of one turn of the event loop.
 */
class TurnWrites {
  #pending: [ServerResponse, Reply, IncomingMessage][] = [];

  add(res: ServerResponse, reply: Reply, req: IncomingMessage): void {
    if (this.#pending.push([res, reply, req]) === 1) setImmediate(() => this.#write());
  }

  #write(): void {
    const pending = this.#pending;
    this.#pending = [];
    for (const [res, reply, req] of pending) writeReply(res, reply, req);
  }
}

/** The h3 app: the routes, 405 for their other methods, and safe replies to anything else. */
function h3App(routes: WireRoutes, onError: (error: unknown) => void): H3 {
  const app = new H3({
    // Failures go to onError, never straight to the console.
    silent: true,
    onError(error) {
      // Errors h3 raises itself (no such route, a malformed URL): a generic message, never
      // the path that was asked for.
      const status = error.status >= 400 && error.status <= 599 ? error.status : 500;
      if (status >= 500) onError(error.cause ?? error);
      return errorResponse(status, genericMessage(status));
    },
  });
  const methodNotAllowed = (allow: string) => () =>
    errorResponse(405, genericMessage(405), { allow });
  const viaH3 = (route: Route) => async (event: H3Event) => toResponse(await route(event));
  app.get("/health", viaH3(routes.health));
  app.head("/health", () => new Response(null, { status: 200 }));
  app.all("/health", methodNotAllowed("GET, HEAD"));
  app.get("/v2/requests/:request/tasks/:task", viaH3(routes.task));
  app.all("/v2/requests/:request/tasks/:task", methodNotAllowed("GET"));
  app.post("/v2/requests/:request/tasks/:task/reports", viaH3(routes.reports));
  app.all("/v2/requests/:request/tasks/:task/reports", methodNotAllowed("POST"));
  app.post("/v2/requests/:request/tasks/:task/next", viaH3(routes.next));
  app.all("/v2/requests/:request/tasks/:task/next", methodNotAllowed("POST"));
  // A worker of wire protocol 1 (an older Sheepdog's job): a clear refusal, which it does not
  // retry. Its body is not read.
  app.all("/v1/**", () =>
    errorResponse(
      410,
      `This server speaks wire protocol ${WIRE_VERSION}, and this worker an older one. Run the map again with this version of Sheepdog.`,
      { connection: "close" },
    ),
  );
  return app;
}

/**
 * The server's request listener: the worker routes' plain spellings straight from Node
 * (see {@link DIRECT_ROUTE}), everything else through h3.
 */
export function nodeListener(routes: WireRoutes, onError: (error: unknown) => void): NodeListener {
  const viaH3 = toNodeHandler(h3App(routes, onError));
  const turnWrites = new TurnWrites();
  return (req, res) => {
    const direct = req.url === undefined ? null : DIRECT_ROUTE.exec(req.url);
    if (direct !== null && req.method === (direct[3] === undefined ? "GET" : "POST")) {
      const event = directEvent(req, direct[1] as string, direct[2] as string);
      const route = direct[3] === undefined ? routes.task : routes.reports;
      const reply = route(event);
      if (!(reply instanceof Promise)) {
        turnWrites.add(res, reply, req);
        return;
      }
      reply.then(
        (answer) => writeReply(res, answer, req),
        (error: unknown) => {
          onError(error);
          writeReply(res, errorReply(500, "Internal server error."));
        },
      );
      return;
    }
    void viaH3(req, res);
  };
}
