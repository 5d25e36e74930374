// Pickles that decode in linear time yet cost the decoder much more than their size suggests:
// many small objects, and Map or Set keys chosen to collide in V8's number hash, which is not
// seeded (see packages/serialise/README.md, "Linear is not free").

export const MB = 1 << 20;

const PROTO_4 = [0x80, 4];
const STOP = 0x2e;
const MARK = 0x28;

/** A protocol 4 pickle of these opcodes and arguments, then STOP. */
function pickle(...parts: (number[] | Uint8Array)[]): Uint8Array {
  const bytes = [PROTO_4, ...parts, [STOP]].map((part) => Uint8Array.from(part));
  return new Uint8Array(Buffer.concat(bytes));
}

const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];

/** The inverse of an odd number modulo 2^32 (Newton's iteration). */
function inverse(odd: number): number {
  let x = odd;
  for (let i = 0; i < 5; i++) x = Math.imul(x, 2 - Math.imul(odd, x));
  return x >>> 0;
}

/** The inverse of `x ^= x >>> shift` on 32 bits. */
function unshiftXor(h: number, shift: number): number {
  let x = h;
  for (let i = 0; i * shift < 32; i++) x = h ^ (x >>> shift);
  return x >>> 0;
}

/**
 * The int32 whose hash in V8 (`ComputeUnseededHash`: `~k + (k << 15)`, `^ >>> 12`, `* 5`,
 * `^ >>> 4`, `* 2057`, `^ >>> 16`) is `hash`: each step is a bijection of 32 bits, undone here
 * in reverse order.
 */
function keyOfHash(hash: number): number {
  let x = unshiftXor(hash >>> 0, 16);
  x = Math.imul(x, inverse(2057)) >>> 0;
  x = unshiftXor(x, 4);
  x = Math.imul(x, inverse(5)) >>> 0;
  x = unshiftXor(x, 12);
  return Math.imul((x + 1) >>> 0, inverse(2 ** 15 - 1)) | 0;
}

/**
 * `count` distinct small ints whose V8 hashes end in 17 zero bits, so that they share a bucket
 * of any `Map` or `Set` of up to 2^18 entries: each insert walks all the keys before it.
 */
export function collidingInts(count: number): number[] {
  if (count > 2 ** 15) throw new Error("At most 32768 ints collide in the low 17 bits.");
  return Array.from({ length: count }, (_, i) => keyOfHash(i * 2 ** 17));
}

/** `{k: None for k in keys}` as pickle opcodes (EMPTY_DICT, MARK, BININT k NONE..., SETITEMS). */
function intKeyDict(keys: readonly number[]): number[] {
  const ops = [0x7d, MARK];
  for (const key of keys) ops.push(0x4a, ...u32(key), 0x4e);
  ops.push(0x75);
  return ops;
}

/** `set(ints)` as pickle opcodes (EMPTY_SET, MARK, BININT..., ADDITEMS). */
function intSet(ints: readonly number[]): number[] {
  const ops = [0x8f, MARK];
  for (const int of ints) ops.push(0x4a, ...u32(int));
  ops.push(0x90);
  return ops;
}

/**
 * `{k: None}` for `count` ints above 2^64 that share their low 64 bits (V8 hashes a BigInt by
 * its lowest digit alone), as pickle opcodes (LONG1 of 10 bytes).
 */
function bigIntKeyDict(count: number): number[] {
  const ops = [0x7d, MARK];
  for (let i = 1; i <= count; i++) {
    ops.push(0x8a, 10, 1, 0, 0, 0, 0, 0, 0, 0, i & 0xff, (i >>> 8) & 0x7f, 0x4e);
  }
  ops.push(0x75);
  return ops;
}

/** `(value, bytes)`: the opcodes of `value` in a tuple with bytes that fill it to `size`. */
function padded(value: number[], size: number): Uint8Array {
  const fill = size - value.length - 10;
  return pickle([MARK], value, [0x42, ...u32(fill)], new Uint8Array(fill), [0x74]);
}

/** A list of as many empty lists as fit in `size` bytes (EMPTY_LIST, MARK, EMPTY_LIST..., APPENDS). */
export function emptyLists(size: number): Uint8Array {
  return pickle([0x5d, MARK], new Uint8Array(size - 6).fill(0x5d), [0x65]);
}

/** As many empty dicts as fit in `size` bytes, then a byte that is no opcode: undecodable. */
export function emptyDictsThenJunk(size: number): Uint8Array {
  return pickle([0x5d, MARK], new Uint8Array(size - 6).fill(0x7d), [0xff]);
}

/** A dict of `keys` colliding int keys, padded to `size` bytes. */
export function collidingIntDict(keys: number, size: number): Uint8Array {
  return padded(intKeyDict(collidingInts(keys)), size);
}

/** A set of `count` colliding ints, padded to `size` bytes. */
export function collidingIntSet(count: number, size: number): Uint8Array {
  return padded(intSet(collidingInts(count)), size);
}

/** A dict of `count` big-int keys sharing their low 64 bits, padded to `size` bytes. */
export function bigIntKeysDict(count: number, size: number): Uint8Array {
  return padded(bigIntKeyDict(count), size);
}

/**
 * A dict that fills `size` bytes with keys colliding in the low 17 bits of their hash, each
 * of the 32,768 such keys set again and again: seconds to decode.
 */
export function collidingIntDictOf(size: number): Uint8Array {
  const keys = collidingInts(2 ** 15);
  const count = Math.floor((size - 8) / 6);
  return pickle(intKeyDict(Array.from({ length: count }, (_, i) => keys[i % keys.length] ?? 0)));
}
