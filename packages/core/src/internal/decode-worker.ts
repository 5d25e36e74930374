import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { getHeapStatistics } from "node:v8";
import { Worker } from "node:worker_threads";

/**
 * The program of a decode worker. It is evaluated rather than loaded from a file of its own, so
 * that one program runs from core's build and from its TypeScript source (under the tests),
 * and it imports `@sheepdog/serialise` by the URL resolved from this module. It posts
 * `{ started: true }` once the decoder is loaded, then answers each batch of pickles (their
 * bytes one after another, and their lengths) with `{ details }`: for each pickle in order,
 * `null` when it decodes, else the decoder's message. A decoder that cannot be loaded ends the
 * worker with an error before it has started.
 */
const PROGRAM = `"use strict";
const { parentPort, workerData } = require("node:worker_threads");
const decoding = import(workerData.serialise).then(({ decode }) => {
  parentPort.postMessage({ started: true });
  return decode;
});
parentPort.on("message", async ({ bytes, lengths }) => {
  const decode = await decoding;
  const details = [];
  let offset = 0;
  for (const length of lengths) {
    let detail = null;
    try {
      decode(bytes.subarray(offset, offset + length));
    } catch (error) {
      detail = error instanceof Error ? error.message : String(error);
    }
    details.push(detail);
    offset += length;
  }
  parentPort.postMessage({ details });
});
`;

/** A batch of pickles for a decode worker: their bytes one after another, and their lengths. */
export interface DecodeBatch {
  bytes: Uint8Array<ArrayBuffer>;
  lengths: number[];
}

/** What a decode worker posts: that it has started, or the outcome of a batch, in order. */
export type DecodeWorkerMessage = { started: true } | { details: (string | null)[] };

/** The file URL of `@sheepdog/serialise` as this module resolves it. */
function serialiseUrl(): string {
  return pathToFileURL(createRequire(import.meta.url).resolve("@sheepdog/serialise")).href;
}

/**
 * Starts a worker thread that decodes batches of pickles (see {@link DecodeWorkerMessage}). Its heap may
 * grow to `heapMb`, by default as large as this thread's: a pickle too big to decode there ends
 * the worker with `ERR_WORKER_OUT_OF_MEMORY` instead of ending the program.
 */
export function startDecodeWorker(
  heapMb = Math.floor(getHeapStatistics().heap_size_limit / 2 ** 20),
): Worker {
  return new Worker(PROGRAM, {
    eval: true,
    workerData: { serialise: serialiseUrl() },
    resourceLimits: { maxOldGenerationSizeMb: heapMb },
  });
}
