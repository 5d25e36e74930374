import { describe, expect, it } from "vitest";
import { inOrder, unpack } from "./packed.js";

describe("packed reads", () => {
  it("accept ids only in ascending order from the slice's first row", () => {
    expect(inOrder("5,6,7", 5, 3)).toBe(true);
    expect(inOrder("5", 5, 1)).toBe(true);
    expect(inOrder("5,7,6", 5, 3)).toBe(false);
    expect(inOrder("5,6", 5, 3)).toBe(false);
    expect(inOrder("5,6,7,8", 5, 3)).toBe(false);
    expect(inOrder("6,7,8", 5, 3)).toBe(false);
    expect(inOrder(null, 5, 1)).toBe(false);
  });

  it("unpack views of one buffer, nulls, and large values read apart", () => {
    const big = new Uint8Array(2000).fill(9);
    const values = unpack("2,-1,0,2000,1", "0a0b0c", 5, (i) => (i === 3 ? big : new Uint8Array()));
    expect(values.map((v) => (v === null ? null : [...v].slice(0, 3)))).toEqual([
      [10, 11],
      null,
      [],
      [9, 9, 9],
      [12],
    ]);
    expect(values[0]?.buffer).toBe(values[4]?.buffer);
  });

  it("refuse lengths that do not match the rows or the hex", () => {
    expect(() => unpack("2,2", "0a0b0c0d", 3, () => new Uint8Array())).toThrow();
    expect(() => unpack("2,2", "0a0b0c", 2, () => new Uint8Array())).toThrow();
  });
});
