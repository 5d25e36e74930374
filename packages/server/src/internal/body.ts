import type { Readable } from "node:stream";
import { WireError } from "./wire-error.js";

/**
 * The body-reading side of a request: its headers and its body stream, and (on Node, as srvx
 * gives it to h3) the Node request underneath, which is cheaper to read than the web stream
 * made from it.
 */
interface BodySource {
  /** The method, and the URL the request was made to (on a web request). */
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: { get(name: string): string | null };
  readonly body: ReadableStream<Uint8Array> | null;
  readonly runtime?: { readonly node?: { readonly req?: NodeRequestBody } } | undefined;
}

/**
 * A Node request (HTTP/1 or HTTP/2) as a readable stream of its body, with its method and
 * request target as sent.
 */
type NodeRequestBody = Readable & {
  readonly complete: boolean;
  readonly method?: string | undefined;
  readonly url?: string | undefined;
};

function unreadable(): WireError {
  return new WireError(400, "The request body could not be read to its end.");
}

function joined(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

/** {@link readLimitedBody} straight from a Node request's data events. */
function readNodeBody(req: NodeRequestBody, limit: number): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    if (req.readableEnded || req.destroyed) {
      reject(unreadable());
      return;
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.byteLength;
      if (total > limit) {
        cleanup();
        req.pause();
        reject(tooLarge(limit));
        return;
      }
      // A plain Uint8Array over the same bytes, as the web stream would give.
      chunks.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    };
    const onEnd = () => {
      cleanup();
      resolve(joined(chunks, total));
    };
    const onError = () => {
      cleanup();
      reject(unreadable());
    };
    const onClose = () => {
      cleanup();
      if (req.complete) resolve(joined(chunks, total));
      else reject(unreadable());
    };
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", onError);
    req.once("close", onClose);
  });
}

function tooLarge(limit: number): WireError {
  return new WireError(
    413,
    // The worker reads the limit from "limit of N bytes" (body_limit_in in sheepdog_worker.py).
    `The request body is larger than the server's limit of ${limit} bytes (maxBodyBytes). Send fewer reports per post.`,
    { connection: "close" },
  );
}

/**
 * The body length a request declares (`undefined` for a chunked body), refused with 400 when
 * it is not a number and with 413 when it is over `limit`.
 */
export function declaredLength(request: BodySource, limit: number): number | undefined {
  const declared = request.headers.get("content-length");
  if (declared === null) return undefined;
  if (!/^\d{1,16}$/.test(declared)) {
    throw new WireError(400, "The Content-Length header is not a number.");
  }
  const length = Number(declared);
  if (length > limit) throw tooLarge(limit);
  return length;
}

/**
 * The bytes of request bodies that may be read at once, across all connections: each body
 * reserves its declared length (or the per-body limit, when chunked) before it is read, and
 * gives it back once its post is handled. A body that does not fit is refused with 503, so
 * that its worker tries again later, instead of the server holding more than the budget.
 */
export class BodyBudget {
  readonly #limit: number;
  #reserved = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Reserves `bytes`; false when they do not fit now. */
  reserve(bytes: number): boolean {
    if (this.#reserved + bytes > this.#limit) return false;
    this.#reserved += bytes;
    return true;
  }

  /** Gives back what {@link reserve} took. */
  release(bytes: number): void {
    this.#reserved -= bytes;
  }

  /** The bytes reserved now. */
  get reserved(): number {
    return this.#reserved;
  }
}

/**
 * Reads a request body into memory, refusing it with 413 as soon as it passes `limit` bytes:
 * an honest Content-Length above the limit is refused before reading, and a body that lies
 * (or is chunked) is refused the moment the running total passes the limit, so an oversized
 * body is never held in memory. The rest of a refused body is left unread; the response asks
 * the client to close the connection.
 */
export async function readLimitedBody(request: BodySource, limit: number): Promise<Uint8Array> {
  declaredLength(request, limit);
  const nodeRequest = request.runtime?.node?.req;
  if (nodeRequest !== undefined) return readNodeBody(nodeRequest, limit);
  const stream = request.body;
  if (stream === null) return new Uint8Array(0);
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      let step: Awaited<ReturnType<typeof reader.read>>;
      try {
        step = await reader.read();
      } catch {
        throw unreadable();
      }
      if (step.done) break;
      total += step.value.byteLength;
      if (total > limit) throw tooLarge(limit);
      chunks.push(step.value);
    }
  } finally {
    reader.releaseLock();
  }
  return joined(chunks, total);
}
