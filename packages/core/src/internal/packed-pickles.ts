/** The size of each buffer pickles are packed into (a larger pickle gets one of its own). */
const chunkBytes = 256 * 1024;

/**
 * Pickles packed one after another into a few large buffers, outside V8's heap, and read back
 * in order as views. A stream's window holds its argument tuples this way from the moment
 * they are read until the store has them: held as JavaScript arrays for the second or so that
 * takes, a hundred thousand small tuples were each moved to the old generation (about 70 bytes
 * a call) and were the largest thing alive at a full collection, which sets how far the heap
 * grows before the next one.
 */
export class PackedPickles implements Iterable<Uint8Array> {
  readonly #chunks: Buffer[] = [];
  #lengths = new Uint32Array(1024);
  #count = 0;
  #used = chunkBytes;
  #largest = 0;
  #bytes = 0;

  /** How many pickles it holds. */
  get count(): number {
    return this.#count;
  }

  /** The largest pickle's size in bytes. */
  get largest(): number {
    return this.#largest;
  }

  /** The size of every pickle together, in bytes. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Appends a copy of `pickle`. */
  push(pickle: Uint8Array): void {
    let chunk = this.#chunks.at(-1);
    if (chunk === undefined || this.#used + pickle.byteLength > chunk.byteLength) {
      chunk = Buffer.allocUnsafeSlow(Math.max(chunkBytes, pickle.byteLength));
      this.#chunks.push(chunk);
      this.#used = 0;
    }
    chunk.set(pickle, this.#used);
    this.#used += pickle.byteLength;
    if (this.#count === this.#lengths.length) {
      const grown = new Uint32Array(this.#lengths.length * 2);
      grown.set(this.#lengths);
      this.#lengths = grown;
    }
    this.#lengths[this.#count++] = pickle.byteLength;
    this.#largest = Math.max(this.#largest, pickle.byteLength);
    this.#bytes += pickle.byteLength;
  }

  /** Lets go of every pickle (once the store has them): it then holds none, as when new. */
  clear(): void {
    this.#chunks.length = 0;
    this.#lengths = new Uint32Array(1024);
    this.#count = 0;
    this.#used = chunkBytes;
    this.#largest = 0;
    this.#bytes = 0;
  }

  /** The pickles in the order they were pushed, each a view into its buffer. */
  *[Symbol.iterator](): Iterator<Uint8Array> {
    let chunk = 0;
    let offset = 0;
    for (let i = 0; i < this.#count; i++) {
      const length = this.#lengths[i] as number;
      // Mirrors push: a pickle that did not fit where the last one ended starts the next buffer.
      if (offset + length > (this.#chunks[chunk] as Buffer).byteLength) {
        chunk += 1;
        offset = 0;
      }
      yield (this.#chunks[chunk] as Buffer).subarray(offset, offset + length);
      offset += length;
    }
  }
}
