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
  /** The same arguments, once read. */
  loaded: (Uint8Array | undefined)[] | undefined;
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

  /**
   * The argument of index `index` of request `id`, which has `tasks` arguments in all: at once
   * when its block is read already, else as a promise.
   */
  get(id: RequestId, index: number, tasks: number): Uint8Array[] | Promise<Uint8Array[]> {
    const small = this.#small.get(id);
    if (small !== true) return this.#one(id, index, small);
    const start = index - (index % BLOCK);
    const key = `${id}:${start}`;
    let block = this.#blocks.get(key);
    if (block === undefined) {
      const count = Math.min(BLOCK, tasks - start);
      const read = this.#store.getArgs(id, start, count);
      const added: Block = { args: read, loaded: undefined, left: count };
      read.then(
        (args) => {
          added.loaded = args;
        },
        () => {
          if (this.#blocks.get(key) === added) this.#blocks.delete(key);
        },
      );
      block = added;
      this.#blocks.set(key, block);
      if (this.#blocks.size > MAX_BLOCKS) {
        const oldest = this.#blocks.keys().next().value as string;
        this.#blocks.delete(oldest);
      }
    }
    const held = block;
    if (held.loaded !== undefined) return this.#take(held, key, id, index - start, start);
    return held.args.then(() => this.#take(held, key, id, index - start, start));
  }

  /** Drops everything kept. */
  clear(): void {
    this.#blocks.clear();
    this.#small.clear();
  }

  /** One argument read alone; the first one read of a request decides whether it is small. */
  async #one(id: RequestId, index: number, small: boolean | undefined): Promise<Uint8Array[]> {
    const args = await this.#store.getArgs(id, index, 1);
    if (small === undefined) {
      if (this.#small.size >= MAX_BLOCKS) this.#small.clear();
      this.#small.set(id, (args[0]?.byteLength ?? Number.POSITIVE_INFINITY) <= SMALL_ARG_BYTES);
    }
    return args;
  }

  /** Serves argument `offset` of a block that was read (and drops it from the block). */
  #take(
    block: Block,
    key: string,
    id: RequestId,
    offset: number,
    start: number,
  ): Uint8Array[] | Promise<Uint8Array[]> {
    const args = block.loaded as (Uint8Array | undefined)[];
    const arg = args[offset];
    // Served already (a task fetched twice): read it again.
    if (arg === undefined) return this.#store.getArgs(id, start + offset, 1);
    args[offset] = undefined;
    block.left -= 1;
    if (block.left === 0 && this.#blocks.get(key) === block) this.#blocks.delete(key);
    return [arg];
  }
}
