import type { TaskHeldBody, WireErrorBody } from "@sheepdog/contracts";
import { HTTPResponse } from "h3";

/** Fields of an error answer's body besides `status` and `message`. */
export type ErrorExtra = Pick<WireErrorBody, "serverTime"> | Pick<TaskHeldBody, "heldBy">;

/**
 * A failure to answer with a 4xx/5xx status and a safe message. The message is ours, never
 * the client's input and never a stack trace.
 */
export class WireError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;
  /** Fields of the answer's body besides `status` and `message`. */
  readonly extra: ErrorExtra | undefined;

  constructor(
    status: number,
    message: string,
    headers: Record<string, string> = {},
    extra?: ErrorExtra,
  ) {
    super(message);
    this.status = status;
    this.headers = headers;
    this.extra = extra;
  }
}

/**
 * An answer, before it is written: as an h3 response ({@link toResponse}) or straight to a
 * Node response (the server's direct path for the worker routes).
 */
export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string | Uint8Array;
}

/** A JSON error answer `{ status, message }` (and `extra`'s fields). */
export function errorReply(
  status: number,
  message: string,
  headers: Record<string, string> = {},
  extra?: ErrorExtra,
): Reply {
  const body: WireErrorBody = { status, message, ...extra };
  return {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      ...headers,
    },
    body: JSON.stringify(body),
  };
}

/** A JSON success answer. */
export function jsonReply(value: unknown): Reply {
  return {
    status: 200,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
    body: JSON.stringify(value),
  };
}

/** The h3 response of a reply. */
export function toResponse(reply: Reply): HTTPResponse {
  return new HTTPResponse(reply.body, { status: reply.status, headers: reply.headers });
}

/** A JSON error response `{ status, message }`. */
export function errorResponse(
  status: number,
  message: string,
  headers: Record<string, string> = {},
): HTTPResponse {
  return toResponse(errorReply(status, message, headers));
}

/** The message for an error status that h3 raised itself (no route, bad URL, ...). */
export function genericMessage(status: number): string {
  switch (status) {
    case 400:
      return "Bad request.";
    case 404:
      return "Not found.";
    case 405:
      return "Method not allowed.";
    case 408:
      return "The request took too long to arrive.";
    case 413:
      return "The request body is too large.";
    case 415:
      return "Unsupported content type.";
    default:
      return status >= 500 ? "Internal server error." : "Bad request.";
  }
}
