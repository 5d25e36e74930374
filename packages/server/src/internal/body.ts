import { WireError } from "./wire-error.js";

/** The body-reading side of a request: its headers and its body stream. */
interface BodySource {
  readonly headers: Headers;
  readonly body: ReadableStream<Uint8Array> | null;
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
        throw new WireError(400, "The request body could not be read to its end.");
      }
      if (step.done) break;
      total += step.value.byteLength;
      if (total > limit) throw tooLarge(limit);
      chunks.push(step.value);
    }
  } finally {
    reader.releaseLock();
  }
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}
