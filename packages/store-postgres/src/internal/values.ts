/** Whether `value` is bytes, as every value the store keeps must be. */
export function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array;
}

/** A frame's length that says: a value too large to be packed, read on its own. */
const LARGE = -2;

/**
 * The values of a packed read (see statements.ts): each a 4-byte big-endian length and its
 * bytes, or the length -2 for a value read by `large(position)`. Each value is a view into
 * `packed`. With `indexed`, each frame starts with its task's index (4 bytes), handed to `put`.
 */
export function unframe(
  packed: Uint8Array | null,
  put: (position: number, value: Uint8Array | undefined, index: number) => void,
  indexed: boolean,
): void {
  if (packed === null) return;
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  let at = 0;
  for (let position = 0; at < packed.byteLength; position++) {
    const index = indexed ? view.getInt32(at) : position;
    if (indexed) at += 4;
    const length = view.getInt32(at);
    at += 4;
    if (length === LARGE) {
      put(position, undefined, index);
    } else {
      if (length < 0 || at + length > packed.byteLength)
        throw new Error("a packed read is damaged");
      put(position, packed.subarray(at, at + length), index);
      at += length;
    }
  }
}

/** Offsets (1-based, as SQL's substring counts) of values of these lengths laid end to end. */
export function offsetsOf(lengths: readonly number[]): number[] {
  const offsets = new Array<number>(lengths.length);
  let next = 1;
  for (let i = 0; i < lengths.length; i++) {
    offsets[i] = next;
    next += Math.max(0, lengths[i] as number);
  }
  return offsets;
}

/**
 * An int[] parameter as PostgreSQL's text form, `{1,2,3}`: node-postgres would build the same
 * text element by element, several times slower for the 10,000 of a batch.
 */
export function intArray(values: readonly number[]): string {
  return `{${values.join(",")}}`;
}
