import type { RequestSummary } from "@sheepdog/contracts";
import type { H3Event } from "h3";
import { EventStream } from "h3";
import type { RequestsEvent } from "./api-types.js";
import type { RequestRows } from "./request-rows.js";
import type { RequestWatch } from "./request-watch.js";

/** How often an idle stream gets a comment, so that proxies and browsers keep it open. */
const HEARTBEAT_MS = 15_000;
/** How long a browser waits before it reconnects a dropped stream. */
const RETRY_MS = 2_000;

/**
 * The server-sent events of `/api/events`: one `requests` event with the rows that changed,
 * built once per change from the shared watch and written to every open stream, and a comment
 * every {@link HEARTBEAT_MS} in between.
 */
export class EventStreams {
  readonly #streams = new Set<EventStream>();
  readonly #rows: RequestRows;
  readonly #onError: (error: unknown) => void;
  readonly #unsubscribe: () => void;
  readonly #heartbeat: NodeJS.Timeout;
  #closed = false;

  constructor(watch: RequestWatch, rows: RequestRows, onError: (error: unknown) => void) {
    this.#rows = rows;
    this.#onError = onError;
    this.#unsubscribe = watch.subscribe((changed) => {
      if (this.#streams.size > 0) void this.#announce(changed);
    });
    this.#heartbeat = setInterval(() => {
      for (const stream of this.#streams) void stream.pushComment("heartbeat");
    }, HEARTBEAT_MS);
    this.#heartbeat.unref();
  }

  /** How many streams are open. */
  get size(): number {
    return this.#streams.size;
  }

  /** A new stream for `event`'s client, kept until it goes away or {@link closeAll}. */
  open(event: H3Event): EventStream {
    const stream = new EventStream(event);
    if (this.#closed) {
      void stream.close();
      return stream;
    }
    this.#streams.add(stream);
    stream.onClosed(() => {
      this.#streams.delete(stream);
    });
    void stream.push({ event: "hello", retry: RETRY_MS, data: "{}" });
    return stream;
  }

  async #announce(changed: readonly RequestSummary[]): Promise<void> {
    try {
      const now = Date.now();
      const rows = await Promise.all(changed.map((row) => this.#rows.rowOf(row, now)));
      const message: RequestsEvent = { changed: rows, now };
      const data = JSON.stringify(message);
      await Promise.all(
        [...this.#streams].map((stream) => stream.push({ event: "requests", data })),
      );
    } catch (error) {
      this.#onError(error);
    }
  }

  /** Ends every stream and stops announcing. */
  async closeAll(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe();
    clearInterval(this.#heartbeat);
    const streams = [...this.#streams];
    this.#streams.clear();
    await Promise.all(streams.map((stream) => stream.close()));
  }
}
