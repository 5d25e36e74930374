import { describe, expect, it } from "vitest";

// The published entry point, as a user imports it (turbo builds before it tests; run
// `pnpm build` first when calling vitest directly).
const entry = new URL("../dist/index.js", import.meta.url);

describe("the built package", () => {
  it("exports the API and round-trips a value", async () => {
    const api = await import(entry.href);
    expect(Object.keys(api).sort()).toEqual(
      [
        "DEFAULT_MAX_DEPTH",
        "DEFAULT_PROTOCOL",
        "PickleDecodeError",
        "PickleEncodeError",
        "PyFloat",
        "PyFunction",
        "PyGlobal",
        "PyObject",
        "asTuple",
        "bytearray",
        "decode",
        "encode",
        "encodeTuple",
        "frozenset",
        "functionSource",
        "functionSourceChecking",
        "ndarray",
        "isByteArray",
        "isFrozenSet",
        "isNdArray",
        "isPyFunction",
        "isTuple",
        "pickleProtocols",
        "py",
        "pyFile",
        "pyFloat",
        "tuple",
      ].sort(),
    );
    const value = { a: api.tuple(1, 2n ** 80n), b: new Map([[1, api.frozenset(["x"])]]) };
    expect(api.decode(api.encode(value))).toEqual(value);
  });
});
