import { DamagedRows } from "./errors.js";

/** A slice holds at most this many arguments ... */
export const ARGS_PER_SLICE = 1024;
/**
 * ... and is closed once its pickles reach this many bytes (one larger pickle has its own).
 * A task of one call reads its argument's whole slice: small slices keep that read small.
 */
export const SLICE_BYTES = 32 * 1024;

/** The arguments of arg rows `first .. first + count - 1`, as a row of `arg_slices` holds them. */
export interface PackedSlice {
  first: number;
  count: number;
  /** Where each argument ends in `value`: 32-bit little-endian integers. */
  ends: Uint8Array;
  value: Uint8Array;
}

/**
 * Packs consecutive arguments into slices (see `ArgSlicesTable` in schema.ts). Each argument is
 * copied as it is added, so the caller may reuse its buffer.
 */
export class SlicePacker {
  #first: number;
  #count = 0;
  #used = 0;
  #value = Buffer.allocUnsafe(SLICE_BYTES);
  #ends = Buffer.allocUnsafe(ARGS_PER_SLICE * 4);

  /** Packs arguments from arg row `first` on. */
  constructor(first: number) {
    this.#first = first;
  }

  /** Adds the next row's argument; returns the slice it closed, if it closed one. */
  add(arg: Uint8Array): PackedSlice | undefined {
    const full =
      this.#count > 0 &&
      (this.#count === ARGS_PER_SLICE || this.#used + arg.byteLength > SLICE_BYTES);
    const closed = full ? this.finish() : undefined;
    if (this.#used + arg.byteLength > this.#value.byteLength) {
      this.#value = Buffer.allocUnsafe(Math.max(SLICE_BYTES, arg.byteLength));
    }
    this.#value.set(arg, this.#used);
    this.#used += arg.byteLength;
    this.#ends.writeUInt32LE(this.#used, this.#count * 4);
    this.#count += 1;
    return closed;
  }

  /** The slice of the arguments added since the last one closed; undefined if none were. */
  finish(): PackedSlice | undefined {
    if (this.#count === 0) return undefined;
    const slice: PackedSlice = {
      first: this.#first,
      count: this.#count,
      ends: Buffer.from(this.#ends.subarray(0, this.#count * 4)),
      value: Buffer.from(this.#value.subarray(0, this.#used)),
    };
    this.#first += this.#count;
    this.#count = 0;
    this.#used = 0;
    return slice;
  }
}

/**
 * Appends to `out` the arguments of rows `[from, to)` that the slice holds, as views of its
 * value. Throws if the slice's ends do not fit its value: the file was damaged.
 */
export function argsOfSlice(slice: PackedSlice, from: number, to: number, out: Uint8Array[]): void {
  const { first, count, ends, value } = slice;
  if (ends.byteLength !== count * 4)
    throw new DamagedRows(`arg slice ${first} has a bad ends column`);
  const view = new DataView(ends.buffer, ends.byteOffset, ends.byteLength);
  const last = Math.min(to, first + count);
  for (let row = Math.max(from, first); row < last; row++) {
    const i = row - first;
    const start = i === 0 ? 0 : view.getUint32((i - 1) * 4, true);
    const end = view.getUint32(i * 4, true);
    if (end < start || end > value.byteLength) {
      throw new DamagedRows(`arg slice ${first} has a bad end for row ${row}`);
    }
    out.push(new Uint8Array(value.buffer, value.byteOffset + start, end - start));
  }
}
