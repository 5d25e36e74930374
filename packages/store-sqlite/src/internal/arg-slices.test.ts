import { describe, expect, it } from "vitest";
import type { PackedSlice } from "./arg-slices.js";
import { ARGS_PER_SLICE, argsOfSlice, SLICE_BYTES, SlicePacker } from "./arg-slices.js";
import { DamagedRows } from "./errors.js";

/** Packs `args` from row `first`; every slice closed, in order. */
function pack(first: number, args: Uint8Array[]): PackedSlice[] {
  const packer = new SlicePacker(first);
  const slices: PackedSlice[] = [];
  for (const arg of args) {
    const closed = packer.add(arg);
    if (closed) slices.push(closed);
  }
  const last = packer.finish();
  if (last) slices.push(last);
  return slices;
}

/** Every argument of `slices`, rows `[from, to)`. */
function unpackAll(slices: PackedSlice[], from: number, to: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const slice of slices) argsOfSlice(slice, from, to, out);
  return out;
}

const bytes = (size: number, fill: number) => new Uint8Array(size).fill(fill);

describe("arg slices", () => {
  it("close on their count, and cover consecutive rows", () => {
    const args = Array.from({ length: 2 * ARGS_PER_SLICE + 1 }, (_, i) => bytes(i % 3, i % 256));
    const slices = pack(10, args);
    expect(slices.map((s) => [s.first, s.count])).toEqual([
      [10, ARGS_PER_SLICE],
      [10 + ARGS_PER_SLICE, ARGS_PER_SLICE],
      [10 + 2 * ARGS_PER_SLICE, 1],
    ]);
    expect(unpackAll(slices, 10, 10 + args.length)).toEqual(args);
    expect(unpackAll(slices, 1030, 1040)).toEqual(args.slice(1020, 1030));
  });

  it("close on their bytes; a larger argument has a slice of its own", () => {
    const third = Math.floor(SLICE_BYTES / 3);
    const args = [
      bytes(third, 1),
      bytes(third, 2),
      bytes(third, 3),
      bytes(SLICE_BYTES * 2, 4),
      bytes(1, 5),
    ];
    const slices = pack(1, args);
    expect(slices.map((s) => s.count)).toEqual([3, 1, 1]);
    expect(slices.map((s) => s.value.byteLength)).toEqual([3 * third, 2 * SLICE_BYTES, 1]);
    expect(unpackAll(slices, 1, 6)).toEqual(args);
  });

  it("copy each argument as it is added, so a reused buffer changes nothing", () => {
    const buffer = bytes(4, 1);
    const packer = new SlicePacker(1);
    packer.add(buffer);
    buffer.fill(2);
    packer.add(buffer);
    const slice = packer.finish() as PackedSlice;
    expect(unpackAll([slice], 1, 3)).toEqual([bytes(4, 1), bytes(4, 2)]);
    expect(packer.finish()).toBeUndefined();
  });

  it("keep empty arguments", () => {
    const slices = pack(1, [bytes(0, 0), bytes(2, 7), bytes(0, 0)]);
    expect(unpackAll(slices, 1, 4)).toEqual([bytes(0, 0), bytes(2, 7), bytes(0, 0)]);
  });

  it("refuse ends that do not fit their value, as a damaged file", () => {
    const [slice] = pack(1, [bytes(3, 1), bytes(3, 2)]) as [PackedSlice];
    const damaged = (change: Partial<PackedSlice>) => () =>
      argsOfSlice({ ...slice, ...change }, 1, 3, []);
    expect(damaged({ count: 3 })).toThrow(DamagedRows);
    expect(damaged({ value: slice.value.subarray(0, 5) })).toThrow(DamagedRows);
    const backwards = Buffer.from(slice.ends);
    backwards.writeUInt32LE(4, 0);
    backwards.writeUInt32LE(2, 4);
    expect(damaged({ ends: backwards })).toThrow(DamagedRows);
  });
});
