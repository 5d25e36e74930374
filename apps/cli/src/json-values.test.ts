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
});
