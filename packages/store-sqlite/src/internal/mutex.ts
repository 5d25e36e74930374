/**
 * Runs functions one at a time, in the order they were queued. A store has one SQLite
 * connection; a transaction that awaits (createRequest yielding to the event loop, a
 * migration) must not see another call's statements in the middle of it.
 */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => T | Promise<T>): Promise<T> {
    const result = this.#tail.then(fn);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
