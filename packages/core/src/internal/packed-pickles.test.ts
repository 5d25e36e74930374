import { describe, expect, it } from "vitest";
import { PackedPickles } from "./packed-pickles.js";

/** `length` bytes, each `seed + i` modulo 256, so that any misplaced byte shows. */
function bytes(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (seed + i) % 256);
}

describe("PackedPickles", () => {
  it("gives back every pickle pushed, in order, byte for byte, across its buffers", () => {
    // Four that fill a 256 KiB buffer exactly, small ones that fill several, an empty one, and
    // ones larger than a buffer.
    const lengths = [
      ...[1, 2, 3, 4].map(() => 64 * 1024),
      ...Array.from({ length: 20_000 }, (_, i) => 1 + (i % 61)),
      0,
      300_000,
      5,
      1_000_000,
      ...Array.from({ length: 5_000 }, (_, i) => 200 + (i % 7)),
    ];
    const pushed = lengths.map((length, i) => bytes(length, i));
    const packed = new PackedPickles();
    for (const pickle of pushed) packed.push(pickle);
    expect(packed.count).toBe(pushed.length);
    expect(packed.largest).toBe(1_000_000);
    expect(packed.bytes).toBe(lengths.reduce((sum, length) => sum + length, 0));
    const read = [...packed];
    expect(read).toHaveLength(pushed.length);
    const wrong = read.filter((pickle, i) => !Buffer.from(pushed[i] as Uint8Array).equals(pickle));
    expect(wrong).toEqual([]);
  });

  it("keeps its own copies: a buffer reused by whoever pushed changes nothing", () => {
    const reused = new Uint8Array(3);
    const packed = new PackedPickles();
    for (let i = 0; i < 3; i++) {
      reused.fill(i + 1);
      packed.push(reused);
    }
    expect([...packed].map((pickle) => [...pickle])).toEqual([
      [1, 1, 1],
      [2, 2, 2],
      [3, 3, 3],
    ]);
  });

  it("holds nothing when nothing was pushed", () => {
    const packed = new PackedPickles();
    expect(packed.count).toBe(0);
    expect([...packed]).toEqual([]);
  });

  it("holds none once cleared, and packs anew after", () => {
    const packed = new PackedPickles();
    for (let i = 0; i < 5_000; i++) packed.push(bytes(100, i));
    packed.clear();
    expect(packed.count).toBe(0);
    expect([packed.largest, packed.bytes]).toEqual([0, 0]);
    expect([...packed]).toEqual([]);
    packed.push(bytes(7, 1));
    expect([...packed].map((pickle) => [...pickle])).toEqual([[...bytes(7, 1)]]);
  });
});
