import { bytearray, encode, frozenset, PyGlobal, PyObject, tuple } from "@sheepdog/serialise";
import { describe, expect, it } from "vitest";
import { MAX_DECODED_BYTES, MAX_REPR_CHARS, pickleRepr } from "./repr.js";

describe("pickleRepr", () => {
  it("writes values as Python would", () => {
    const cases: [unknown, string][] = [
      [tuple(1, "a", null), "(1, 'a', None)"],
      [tuple(7), "(7,)"],
      [[true, false, 2.5, Number.NaN, Number.NEGATIVE_INFINITY], "[True, False, 2.5, nan, -inf]"],
      [{ key: [1, 2] }, "{'key': [1, 2]}"],
      [new Map([[tuple(1, 2), "x"]]), "{(1, 2): 'x'}"],
      [new Set([1]), "{1}"],
      [new Set(), "set()"],
      [frozenset([3]), "frozenset({3})"],
      [new Uint8Array([104, 105, 0, 39]), "b'hi\\x00\\''"],
      [bytearray([65]), "bytearray(b'A')"],
      ['it\'s "quoted"\n', "'it\\'s \"quoted\"\\n'"],
      [2n ** 70n, "1180591620717411303424"],
      [
        new PyObject({ callable: new PyGlobal("decimal", "Decimal"), args: ["1.10"] }),
        "decimal.Decimal('1.10')",
      ],
    ];
    for (const [value, repr] of cases) expect(pickleRepr(encode(value))).toBe(repr);
  });

  it("cuts long and deep values", () => {
    const long = pickleRepr(encode(tuple("x".repeat(1000))));
    expect(long).toHaveLength(MAX_REPR_CHARS);
    expect(long.endsWith("...")).toBe(true);
    expect(pickleRepr(encode(Array.from({ length: 20 }, (_, i) => i)))).toBe(
      "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ...]",
    );
    expect(pickleRepr(encode([[[[[[1]]]]]]))).toBe("[[[[[...]]]]]");
  });

  it("describes what it does not decode, and never throws", () => {
    expect(pickleRepr(new Uint8Array([1, 2, 3]))).toBe("<3 bytes that are not a readable pickle>");
    const big = encode(new Uint8Array(MAX_DECODED_BYTES + 1));
    expect(pickleRepr(big)).toBe(`<${big.byteLength} bytes of pickle>`);
  });
});
