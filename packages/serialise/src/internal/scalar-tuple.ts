import { writeFloat64BE } from "./float64.js";
import {
  BINFLOAT,
  BININT,
  BININT1,
  BININT2,
  FRAME,
  MEMOIZE,
  NEWFALSE,
  NEWTRUE,
  NONE,
  PROTO,
  STOP,
  TUPLE1,
} from "./opcodes.js";

/** The most items a tuple written by {@link scalarTuplePickle} holds (TUPLE1 to TUPLE3). */
const MOST_ITEMS = 3;

/**
 * The pickle (protocol 4 or 5) of a tuple of one to three ints of up to 32 bits, floats, None
 * and bools, byte for byte what the encoder writes for it, made without the encoder; undefined
 * for any other tuple. An argument tuple is most often such a tuple, and setting up the encoder
 * costs more than writing it.
 */
export function scalarTuplePickle(
  items: readonly unknown[],
  protocol: 4 | 5,
): Uint8Array | undefined {
  const count = items.length;
  if (count < 1 || count > MOST_ITEMS) return undefined;
  let size = 0;
  for (let i = 0; i < count; i++) {
    const itemSize = scalarSize(items[i]);
    if (itemSize === 0) return undefined;
    size += itemSize;
  }
  // The frame holds the items, TUPLEn, MEMOIZE and STOP.
  const frame = size + 3;
  const out = new Uint8Array(11 + frame);
  out[0] = PROTO;
  out[1] = protocol;
  out[2] = FRAME;
  out[3] = frame;
  let pos = 11;
  for (let i = 0; i < count; i++) pos = writeScalar(out, pos, items[i]);
  out[pos++] = TUPLE1 + count - 1;
  out[pos++] = MEMOIZE;
  out[pos] = STOP;
  return out;
}

/** The bytes `value` takes in the pickle, 0 when it is not one of these scalars. */
function scalarSize(value: unknown): number {
  if (value === null || typeof value === "boolean") return 1;
  if (typeof value !== "number") return 0;
  if (isInt32(value))
    return value >= 0 && value < 0x100 ? 2 : value >= 0 && value < 0x10000 ? 3 : 5;
  // An integer past 32 bits is a Python int the encoder writes as LONG1.
  return Number.isInteger(value) && !Object.is(value, -0) ? 0 : 9;
}

/** An int of up to 32 bits, not -0 (which is the float -0.0). */
function isInt32(value: number): boolean {
  return (value | 0) === value && !Object.is(value, -0);
}

function writeScalar(out: Uint8Array, pos: number, value: unknown): number {
  if (value === null) {
    out[pos] = NONE;
    return pos + 1;
  }
  if (typeof value === "boolean") {
    out[pos] = value ? NEWTRUE : NEWFALSE;
    return pos + 1;
  }
  const n = value as number;
  if (!isInt32(n)) {
    out[pos] = BINFLOAT;
    writeFloat64BE(out, pos + 1, n);
    return pos + 9;
  }
  if (n >= 0 && n < 0x100) {
    out[pos] = BININT1;
    out[pos + 1] = n;
    return pos + 2;
  }
  if (n >= 0 && n < 0x10000) {
    out[pos] = BININT2;
    out[pos + 1] = n & 0xff;
    out[pos + 2] = n >>> 8;
    return pos + 3;
  }
  out[pos] = BININT;
  out[pos + 1] = n & 0xff;
  out[pos + 2] = (n >>> 8) & 0xff;
  out[pos + 3] = (n >>> 16) & 0xff;
  out[pos + 4] = (n >>> 24) & 0xff;
  return pos + 5;
}
