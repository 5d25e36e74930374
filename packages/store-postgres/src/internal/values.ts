/** Whether `value` is bytes, as every value the store keeps must be. */
export function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array;
}

/** A Buffer over the same memory (node-postgres sends Buffers as binary parameters). */
export function asBuffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value)
    ? value
    : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/**
 * The values of `count` rows from a packed read (see statements.ts): their lengths joined by
 * commas (-1: none), and the bytes of the small ones one after another. Each small value is a
 * view into `bytes`; a value too large to be packed is read by `large(i)`.
 */
export async function unpack(
  lengths: string | null,
  bytes: Uint8Array | null,
  count: number,
  smallBytes: number,
  large: (i: number) => Promise<Uint8Array>,
): Promise<(Uint8Array | null)[]> {
  const sizes = lengths ? lengths.split(",") : [];
  if (sizes.length !== count) {
    throw new Error(`a packed read returned ${sizes.length} lengths for ${count} rows`);
  }
  const slab = bytes ?? new Uint8Array(0);
  const values: (Uint8Array | null)[] = new Array(count);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const size = Number(sizes[i]);
    if (size < 0) {
      values[i] = null;
    } else if (size > smallBytes) {
      values[i] = await large(i);
    } else {
      values[i] = slab.subarray(offset, offset + size);
      offset += size;
    }
  }
  if (offset !== slab.byteLength) throw new Error("a packed read's lengths do not match its bytes");
  return values;
}
