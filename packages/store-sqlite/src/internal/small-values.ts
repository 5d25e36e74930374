/**
 * Values up to this size are read as hex text and decoded into shared slabs (see
 * {@link SlabDecoder}); larger ones are read as blobs.
 */
export const SMALL_VALUE_BYTES = 1024;

/**
 * SQL for a blob column read through {@link SlabDecoder}: hex text when small, the blob
 * itself when large, NULL when NULL.
 */
export function smallAsHex(column: string): string {
  return `CASE WHEN length(${column}) <= ${SMALL_VALUE_BYTES} THEN hex(${column}) ELSE ${column} END`;
}

const SLAB_BYTES = 256 * 1024;

/**
 * Decodes many small values into a few large slabs.
 *
 * Why: better-sqlite3 makes a separate Node Buffer (its own ArrayBuffer and backing store)
 * for every blob it returns, which costs about 2 µs and several hundred bytes each. Reading
 * the 1,000,000 arguments and results of a big request that way took 4 s and 800 MB; reading
 * small values as hex text and decoding them into slabs, returning views, takes half of both.
 */
export class SlabDecoder {
  #slab: Buffer = Buffer.alloc(0);
  #used = 0;

  /** The bytes of a value read with {@link smallAsHex}. */
  decode(value: unknown): Uint8Array | null {
    if (value === null || value === undefined) return null;
    if (typeof value !== "string") return value as Uint8Array;
    const size = value.length >>> 1;
    if (size === 0) return new Uint8Array(0);
    if (this.#used + size > this.#slab.byteLength) {
      this.#slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, size));
      this.#used = 0;
    }
    const offset = this.#used;
    this.#slab.write(value, offset, size, "hex");
    this.#used += size;
    return new Uint8Array(this.#slab.buffer, this.#slab.byteOffset + offset, size);
  }
}
