import type { WireErrorBody } from "@sheepdog/contracts";

/**
 * A failure to answer with a 4xx/5xx status and a safe message. The message is ours, never
 * the client's input and never a stack trace.
 */
export class WireError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

/** A JSON error response `{ status, message }`. */
export function errorResponse(
  status: number,
  message: string,
  headers: Record<string, string> = {},
): Response {
  const body: WireErrorBody = { status, message };
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      ...headers,
    },
  });
}

/** A JSON success response. */
export function jsonResponse(value: unknown): Response {
  return new Response(JSON.stringify(value), {
    status: 200,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
  });
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
