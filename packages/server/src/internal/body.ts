import type { Readable } from "node:stream";
import { WireError } from "./wire-error.js";

/**
 * The body-reading side of a request: its headers and its body stream, and (on Node, as srvx
 * gives it to h3) the Node request underneath, which is cheaper to read than the web stream
 * made from it.
 */
interface BodySource {
  readonly headers: { get(name: string): string | null };
  readonly body: ReadableStream<Uint8Array> | null;
  readonly runtime?: { readonly node?: { readonly req?: NodeRequestBody } } | undefined;
}

/** A Node request (HTTP/1 or HTTP/2) as a readable stream of its body. */
type NodeRequestBody = Readable & { readonly complete: boolean };

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
    `The request body is larger than ${limit} bytes. Send fewer reports per post.`,
    { connection: "close" },
  );
}

/**
 * Reads a request body into memory, refusing it with 413 as soon as it passes `limit` bytes:
 * an honest Content-Length above the limit is refused before reading, and a body that lies
 * (or is chunked) is refused the moment the running total passes the limit, so an oversized
 * body is never held in memory. The rest of a refused body is left unread; the response asks
 * the client to close the connection.
 */
export async function readLimitedBody(request: BodySource, limit: number): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null) {
    if (!/^\d{1,16}$/.test(declared)) {
      throw new WireError(400, "The Content-Length header is not a number.");
    }
    if (Number(declared) > limit) throw tooLarge(limit);
  }
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
