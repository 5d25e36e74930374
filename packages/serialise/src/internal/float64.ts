// Big-endian doubles (pickle's BINFLOAT), through one scratch Float64Array: cheaper than a
// DataView per call.
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The double stored big-endian at `bytes[pos .. pos + 7]`. */
export function readFloat64BE(bytes: Uint8Array, pos: number): number {
  for (let i = 0; i < 8; i++) f64Bytes[littleEndian ? 7 - i : i] = bytes[pos + i] as number;
  return f64[0] as number;
}

/** Writes `value` big-endian at `bytes[pos .. pos + 7]`. */
export function writeFloat64BE(bytes: Uint8Array, pos: number, value: number): void {
  f64[0] = value;
  for (let i = 0; i < 8; i++) bytes[pos + i] = f64Bytes[littleEndian ? 7 - i : i] as number;
}
