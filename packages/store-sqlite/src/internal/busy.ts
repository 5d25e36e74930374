import { SheepdogError } from "@sheepdog/contracts";
import { isBusy, source } from "./errors.js";

/**
 * How long SQLite itself waits for a lock before a statement fails with SQLITE_BUSY, in
 * milliseconds. better-sqlite3 is synchronous, so SQLite's wait blocks the event loop: keep
 * it short, and wait longer in {@link retryBusy}, asynchronously.
 */
export const LOCK_SLICE_MS = 25;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `attempt` until it does not fail with SQLITE_BUSY, sleeping (asynchronously, with
 * jitter) between tries, for at most `timeoutMs`. `attempt` must be safe to repeat: it is
 * a read, or the BEGIN IMMEDIATE that starts a write.
 */
export async function retryBusy<T>(
  attempt: () => T | Promise<T>,
  timeoutMs: number,
  file: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let tries = 0; ; tries += 1) {
    try {
      return await attempt();
    } catch (error) {
      if (!isBusy(error)) throw error;
      if (Date.now() >= deadline) {
        throw new SheepdogError(
          "STORE_IO",
          source,
          `${file} stayed locked by another connection for more than ${timeoutMs} ms. Another process may be writing a very large request: try again, or raise busyTimeout.`,
          { cause: error },
        );
      }
      await sleep(Math.min(200, 2 * 2 ** tries) * (0.5 + Math.random()));
    }
  }
}
