import { describe, expect, it } from "vitest";
import { ascendingIds, joinedIntegers, unpack } from "./packed.js";

describe("packed reads", () => {
  it("accept ids only when they ascend inside the range read", () => {
    expect(ascendingIds("5,6,7", 5, 8)).toEqual([5, 6, 7]);
    expect(ascendingIds("5,7", 5, 8)).toEqual([5, 7]);
    expect(ascendingIds(null, 5, 8)).toEqual([]);
    expect(ascendingIds("5,7,6", 5, 8)).toBeUndefined();
    expect(ascendingIds("5,5", 5, 8)).toBeUndefined();
    expect(ascendingIds("4,5", 5, 8)).toBeUndefined();
    expect(ascendingIds("7,8", 5, 8)).toBeUndefined();
    expect(ascendingIds("5,x", 5, 8)).toBeUndefined();
    expect(ascendingIds("", 5, 8)).toBeUndefined();
    expect(ascendingIds(5, 5, 8)).toBeUndefined();
  });

  it("read joined integers, negative ones included, and nothing else", () => {
    expect(joinedIntegers("19,-1,0,123456789012345")).toEqual([19, -1, 0, 123456789012345]);
    expect(joinedIntegers("7")).toEqual([7]);
    for (const bad of ["", ",", "1,", ",1", "1,,2", "-", "-,1", "--1", "1-2", "1.5", " 1", "1e3"]) {
      expect(joinedIntegers(bad)).toBeUndefined();
    }
    expect(joinedIntegers("1234567890123456")).toBeUndefined();
    expect(joinedIntegers(null)).toBeUndefined();
    expect(joinedIntegers(12)).toBeUndefined();
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
