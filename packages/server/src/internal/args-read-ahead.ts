import type { RequestId, Store } from "@sheepdog/contracts";

/** How many arguments one read ahead fetches: the tasks of one aligned block. */
const BLOCK = 64;
/** Read ahead only for requests whose arguments are this small (bytes). */
const SMALL_ARG_BYTES = 1024;
/** Blocks kept at once, over all requests; the oldest goes first. */
const MAX_BLOCKS = 64;

interface Block {
  /** The arguments of indices `start .. start + BLOCK - 1`; undefined once served. */
  args: Promise<(Uint8Array | undefined)[]>;
  left: number;
}

/**
 * Serves the arguments of one-argument tasks (chunk size 1) from reads of a block of 64 at a
 * time: workers of such a request fetch task after task, and one SQLite read of 64 rows costs
 * about what one read of a row does. Only for requests whose arguments are small (the first
 * one read decides), so that a block stays small; each argument is dropped once served, a
 * block once all of its are, and at most 64 blocks are kept. Arguments never change once a
 * request is created, so a block can never be stale.
 */
export class ArgsReadAhead {
  readonly #store: Store;
  readonly #blocks = new Map<string, Block>();
  /** Per request: whether its arguments are small enough to read ahead. */
  readonly #small = new Map<RequestId, boolean>();

  constructor(store: Store) {
    this.#store = store;
  }

  /** The argument of index `index` of request `id`, which has `tasks` arguments in all. */
  async get(id: RequestId, index: number, tasks: number): Promise<Uint8Array[]> {
    const small = this.#small.get(id);
    if (small !== true) {
      const args = await this.#store.getArgs(id, index, 1);
      if (small === undefined) {
        if (this.#small.size >= MAX_BLOCKS) this.#small.clear();
        this.#small.set(id, (args[0]?.byteLength ?? Number.POSITIVE_INFINITY) <= SMALL_ARG_BYTES);
      }
      return args;
    }
    const start = index - (index % BLOCK);
    const key = `${id}:${start}`;
    let block = this.#blocks.get(key);
    if (block === undefined) {
      const count = Math.min(BLOCK, tasks - start);
      block = { args: this.#store.getArgs(id, start, count), left: count };
      this.#blocks.set(key, block);
      block.args.catch(() => this.#blocks.delete(key));
      if (this.#blocks.size > MAX_BLOCKS) {
        const oldest = this.#blocks.keys().next().value as string;
        this.#blocks.delete(oldest);
      }
    }
    const held = block;
    const args = await held.args;
    const arg = args[index - start];
    if (arg === undefined) {
      // Served already (a task fetched twice): read it again.
      return this.#store.getArgs(id, index, 1);
    }
    args[index - start] = undefined;
    held.left -= 1;
    if (held.left === 0 && this.#blocks.get(key) === held) this.#blocks.delete(key);
    return [arg];
  }

  /** Drops everything kept. */
  clear(): void {
    this.#blocks.clear();
    this.#small.clear();
  }
}
