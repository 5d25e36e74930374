// Pickles the benchmarks store as arguments, made without Python.

/** A protocol 4 pickle of the one-element tuple (i,): what core stores for map(f, [[i], ...]). */
export function argTuple(i) {
  return new Uint8Array([
    0x80,
    4,
    0x4a,
    i & 0xff,
    (i >> 8) & 0xff,
    (i >> 16) & 0xff,
    i >>> 24,
    0x85,
    0x2e,
  ]);
}
