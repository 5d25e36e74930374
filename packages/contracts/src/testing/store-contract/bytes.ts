/** Byte helpers of the store suite: values to store, and a readable form of stored ones. */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** UTF-8 bytes of a string. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** A readable form of bytes for assertions. */
export function show(value: Uint8Array | null): string | null {
  return value === null ? null : decoder.decode(value);
}

/** The same bytes as a Buffer (not a copy), to compare large values with `equals`. */
export function asBuffer(value: Uint8Array): Buffer {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}
