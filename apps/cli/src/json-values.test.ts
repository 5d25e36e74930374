import { ndarray } from "@sheepdog/core";
import { describe, expect, it } from "vitest";
import { toJsonValue } from "./json-values.js";

describe("toJsonValue", () => {
  it("spells out a numpy array with its dtype and shape, its data flat", () => {
    expect(
      toJsonValue(ndarray(new Float64Array([1, 2.5, 3, 4, 5, Number.NaN]), { shape: [2, 3] })),
    ).toEqual({
      $ndarray: { dtype: "float64", shape: [2, 3], data: [1, 2.5, 3, 4, 5, { $float: "nan" }] },
    });
    expect(toJsonValue(ndarray(new BigInt64Array([2n ** 60n, -1n])))).toEqual({
      $ndarray: { dtype: "int64", shape: [2], data: [{ $int: String(2n ** 60n) }, { $int: "-1" }] },
    });
    expect(toJsonValue(ndarray(new Uint8Array([1, 0]), { dtype: "bool" }))).toEqual({
      $ndarray: { dtype: "bool", shape: [2], data: [true, false] },
    });
  });

  it("keeps bytes as bytes", () => {
    expect(toJsonValue(new Uint8Array([104, 105]))).toEqual({ $bytes: "aGk=" });
  });

  it("prints a value held twice once, then as a reference", () => {
    const b = [1, 2];
    expect(toJsonValue([b, b, [3]])).toEqual([{ $id: 1, $value: [1, 2] }, { $ref: 1 }, [3]]);
    const bytes = new Uint8Array([104, 105]);
    const key = [1];
    expect(
      toJsonValue(
        new Map<unknown, unknown>([
          ["x", bytes],
          [key, { y: bytes, k: key }],
        ]),
      ),
    ).toEqual({
      $dict: [
        ["x", { $id: 1, $value: { $bytes: "aGk=" } }],
        [
          { $id: 2, $value: [1] },
          { y: { $ref: 1 }, k: { $ref: 2 } },
        ],
      ],
    });
  });

  it("prints a deep DAG in as many nodes as it has, not as its tree", () => {
    let a: unknown[] = [];
    for (let i = 0; i < 40; i++) a = [a, a];
    const line = JSON.stringify(toJsonValue(a));
    expect(line.length).toBeLessThan(2000);
    // The innermost list is the 40th shared one; each level refers to the one just below.
    expect(line.match(/"\$id"/g)).toHaveLength(40);
    expect(line.match(/"\$ref"/g)).toHaveLength(40);
    expect(line.startsWith('[{"$id":1,"$value":[{"$id":2,')).toBe(true);
    expect(line.endsWith('{"$ref":2}]},{"$ref":1}]')).toBe(true);
  });

  it("prints a cycle with the same reference", () => {
    const a: unknown[] = [1];
    a.push(a);
    expect(toJsonValue(a)).toEqual({ $id: 1, $value: [1, { $ref: 1 }] });
    const d: Record<string, unknown> = {};
    d.self = [d];
    expect(toJsonValue([d])).toEqual([{ $id: 1, $value: { self: [{ $ref: 1 }] } }]);
  });

  it("leaves values without sharing as they were", () => {
    expect(toJsonValue([[1], [1], { a: [2] }, new Set([3])])).toEqual([
      [1],
      [1],
      { a: [2] },
      { $set: [3] },
    ]);
  });
});
