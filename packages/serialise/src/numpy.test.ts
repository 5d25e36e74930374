import { readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { b64, PythonOracle, unb64 } from "./__fixtures__/python.js";
import {
  decode,
  encode,
  isByteArray,
  isNdArray,
  type NdArray,
  ndarray,
  PickleDecodeError,
  type PickleProtocol,
  PyObject,
} from "./index.js";

const oracle = PythonOracle.start();
afterAll(() => oracle.close());

const READ = [0, 1, 2, 3, 4, 5];
const WRITE: PickleProtocol[] = [2, 3, 4, 5];

/** CPython's pickles of each expression at every protocol, decoded: [expression][protocol]. */
async function decodedAtEveryProtocol(exprs: string[]): Promise<unknown[][]> {
  const replies = await oracle.batch(exprs.map((expr) => ({ op: "dump", expr, protocols: READ })));
  return replies.map((reply, i) => {
    if (reply.error !== undefined) throw new Error(`${exprs[i]}: ${reply.error}`);
    return (reply.pickles as string[]).map((p) => decode(unb64(p)));
  });
}

/**
 * CPython's pickles of each expression at every protocol, decoded, encoded again at every
 * protocol: where CPython loads a re-encoding to another value than it loads from the original.
 */
async function reencodingDifferences(exprs: string[]): Promise<string[]> {
  const replies = await oracle.batch(exprs.map((expr) => ({ op: "dump", expr, protocols: READ })));
  const checks = replies.flatMap((reply, i) =>
    (reply.pickles as string[]).flatMap((original, read) =>
      WRITE.map((protocol) => ({
        op: "twin",
        original,
        pickle: b64(encode(decode(unb64(original)), { protocol })),
        label: `${exprs[i]} @${read}->${protocol}`,
      })),
    ),
  );
  const results = await oracle.batch(checks);
  return results
    .map((r, i) => (r.ok ? undefined : `${checks[i]?.label}: ${r.detail ?? r.error}`))
    .filter((x) => x !== undefined);
}

describe("numpy scalars", () => {
  const cases: [string, unknown][] = [
    ["np.float64(1.5)", 1.5],
    ["np.float64(-0.0)", -0],
    ["np.float64('inf')", Number.POSITIVE_INFINITY],
    ["np.float64(3.0)", 3],
    ["np.float32(1.25)", 1.25],
    ["np.float16(-65504)", -65504],
    ["np.float16(2**-24)", 2 ** -24],
    ["np.int64(-5)", -5],
    ["np.int64(2**62)", 2n ** 62n],
    ["np.uint64(2**64 - 1)", 2n ** 64n - 1n],
    ["np.int32(-7)", -7],
    ["np.uint32(2**32 - 1)", 2 ** 32 - 1],
    ["np.int16(-300)", -300],
    ["np.uint16(65535)", 65535],
    ["np.int8(-128)", -128],
    ["np.uint8(255)", 255],
    ["np.True_", true],
    ["np.False_", false],
    ["np.array([1.5, 2.5], dtype='>f8')[1]", 2.5],
    ["np.array([-2], dtype='>i8')[0]", -2],
  ];

  it("decode to numbers, bigints (64-bit ints beyond 2^53) and booleans at every protocol", async () => {
    const decoded = await decodedAtEveryProtocol(cases.map(([expr]) => expr));
    decoded.forEach((perProtocol, i) => {
      const [expr, want] = cases[i] as [string, unknown];
      for (const value of perProtocol)
        expect(Object.is(value, want), `${expr}: ${value}`).toBe(true);
    });
    // np.False_ was an opaque object, truthy in JavaScript.
    expect(decoded[cases.findIndex(([expr]) => expr === "np.False_")]?.[2]).toBe(false);
  });

  it("re-encode as the Python numbers they equal", async () => {
    const exprs = cases.map(([expr]) => expr);
    const decoded = await decodedAtEveryProtocol(exprs);
    const checks = decoded.flatMap((perProtocol, i) =>
      WRITE.map((protocol) => ({
        op: "check",
        // np.float64 is a float and np.bool_ compares equal to bool: compare with Python's own.
        expr: `(lambda v: bool(v) if isinstance(v, np.bool_) else v.item())(${exprs[i]})`,
        pickle: b64(encode(perProtocol[4], { protocol })),
        floatInt: true,
      })),
    );
    const results = await oracle.batch(checks);
    expect(results.map((r) => r.detail ?? r.error ?? null)).toEqual(checks.map(() => null));
  });
});

describe("numpy arrays", () => {
  const arrays = [
    "np.arange(6, dtype='f8').reshape(2, 3)",
    "np.asfortranarray(np.arange(24, dtype='i4').reshape(2, 3, 4))",
    "np.arange(5, dtype='>f8')",
    "np.array([1, -2, 3], dtype='>i2')",
    "np.asfortranarray(np.arange(6, dtype='>u4').reshape(3, 2))",
    "np.array(5.5)",
    "np.array(7, dtype='i8')",
    "np.zeros((0, 3))",
    "np.zeros((2, 0), dtype='u1')",
    "np.array([True, False, True])",
    "np.asfortranarray(np.array([[True, False], [False, False]]))",
    "np.array([2**63 - 1, -2**63, 5], dtype='i8')",
    "np.array([2**64 - 1, 0], dtype='u8')",
    "np.arange(4, dtype='u1')",
    "np.array([-128, 127], dtype='i1')",
    "np.array([65535, 1], dtype='u2')",
    "np.arange(3, dtype='f4') / 4",
    "np.array([[1.5, np.nan], [np.inf, -0.0]])",
  ];
  const kinds: [string, string][] = [
    ["Float64Array", "float64"],
    ["Int32Array", "int32"],
    ["Float64Array", "float64"],
    ["Int16Array", "int16"],
    ["Uint32Array", "uint32"],
    ["Float64Array", "float64"],
    ["BigInt64Array", "int64"],
    ["Float64Array", "float64"],
    ["Uint8Array", "uint8"],
    ["Uint8Array", "bool"],
    ["Uint8Array", "bool"],
    ["BigInt64Array", "int64"],
    ["BigUint64Array", "uint64"],
    ["Uint8Array", "uint8"],
    ["Int8Array", "int8"],
    ["Uint16Array", "uint16"],
    ["Float32Array", "float32"],
    ["Float64Array", "float64"],
  ];

  it("decode to typed arrays of their elements in row-major order, with shape and dtype", async () => {
    const decoded = await decodedAtEveryProtocol(arrays);
    // What numpy says: shape, and the elements in C order (ints beyond 2^53 as bigints).
    const facts = await decodedAtEveryProtocol(
      arrays.map((a) => `(list((${a}).shape), (${a}).ravel(order='C').tolist())`),
    );
    decoded.forEach((perProtocol, i) => {
      const [shape, items] = (facts[i] as unknown[][])[4] as [number[], unknown[]];
      const [type, dtype] = kinds[i] as [string, string];
      for (const value of perProtocol) {
        const label = `${arrays[i]}`;
        expect(isNdArray(value), label).toBe(true);
        const a = value as NdArray;
        expect(a.constructor.name, label).toBe(type);
        expect(a.dtype, label).toBe(dtype);
        expect(a.shape, label).toEqual(shape);
        const want = items.map((x) =>
          type.startsWith("Big") ? BigInt(x as number) : typeof x === "boolean" ? Number(x) : x,
        );
        expect([...a], label).toEqual(want);
        expect(isByteArray(a), label).toBe(false);
      }
    });
  });

  it("re-encode to the same numpy arrays: dtype, byte order, shape, memory order and values", async () => {
    // numpy itself loads its arrays in native byte order before protocol 5, in theirs from 5.
    expect(await reencodingDifferences(arrays)).toEqual([]);
  });

  it("keep arrays shared and in cycles shared", async () => {
    const exprs = [
      "(lambda a: [a, a, {'x': a}])(np.arange(3.0))",
      "(lambda l: (l.append(l), l)[1])([np.arange(2)])",
    ];
    const [shared, cyclic] = await decodedAtEveryProtocol(exprs);
    for (const value of shared ?? []) {
      const [a, b, c] = value as [NdArray, unknown, { x: unknown }];
      expect(isNdArray(a)).toBe(true);
      expect(b === a && c.x === a).toBe(true);
    }
    for (const value of cyclic ?? []) {
      const [a, self] = value as [NdArray, unknown];
      expect(isNdArray(a) && self === value).toBe(true);
    }
    expect(await reencodingDifferences(exprs)).toEqual([]);
  });

  it("stay recipes when no typed array holds them, and re-encode as before", async () => {
    const opaque = [
      "np.array(['ab', 'c'])",
      "np.array([1 + 2j])",
      "np.array([1, 'a', None], dtype=object)",
      "np.array([(1, 2.5)], dtype=[('a', '<i4'), ('b', 'f8')])",
      "np.arange(3, dtype='f2')",
      "np.matrix([[1, 2]])",
      "np.array(['2024-01-01'], dtype='datetime64[D]')",
    ];
    const decoded = await decodedAtEveryProtocol(opaque);
    for (const perProtocol of decoded) {
      for (const value of perProtocol) expect(PyObject.isInstance(value)).toBe(true);
    }
    expect(await reencodingDifferences(opaque)).toEqual([]);
  });

  it("are made in JavaScript with ndarray() and load in Python as numpy arrays", async () => {
    const cases: [unknown, string][] = [
      [
        ndarray(new Float64Array([1, 2, 3, 4]), { shape: [2, 2] }),
        "np.array([[1.0, 2.0], [3.0, 4.0]])",
      ],
      [ndarray(new Uint8Array([1, 0, 2]), { dtype: "bool" }), "np.array([True, False, True])"],
      [ndarray(new Uint8Array([1, 0, 2])), "np.array([1, 0, 2], dtype='u1')"],
      [ndarray(new BigInt64Array([-(2n ** 63n)])), "np.array([-2**63], dtype='i8')"],
      [ndarray(new Int16Array([7]), { shape: [] }), "np.array(7, dtype='i2')"],
      [ndarray(new Float32Array(0), { shape: [0, 5] }), "np.zeros((0, 5), dtype='f4')"],
    ];
    const checks = cases.flatMap(([value, expr]) =>
      WRITE.map((protocol) => ({ op: "check", expr, pickle: b64(encode(value, { protocol })) })),
    );
    const results = await oracle.batch(checks);
    expect(results.map((r) => r.detail ?? r.error ?? null)).toEqual(checks.map(() => null));
    expect(() => ndarray(new Float64Array(3), { shape: [2, 2] })).toThrow(
      /does not hold 3 elements/,
    );
    const reshaped = ndarray(ndarray(new Int32Array(6)), { shape: [3, 2] });
    expect([reshaped.shape, reshaped.dtype]).toEqual([[3, 2], "int32"]);
    expect(ndarray(Buffer.from([1, 2])).dtype).toBe("uint8");
    expect(() => ndarray(new Float64Array(3), { dtype: "int64" })).toThrow(
      /cannot hold dtype int64/,
    );
    expect(() => encode(new Map([[ndarray(new Int8Array(1)), 1]]))).toThrow(
      /a numpy array cannot be a dict key/,
    );
    expect(() => encode(new Float64Array(2))).toThrow(
      /or a numpy array: ndarray\(x, \{ shape \}\)/,
    );
  });

  it("refuses to build many arrays from one shared buffer (the copy budget)", () => {
    // _frombuffer(buf, dtype('u1'), (n,), 'C') 20,000 times over one memoized 100 KB buffer.
    const n = 100_000;
    const head = Buffer.concat([
      Buffer.from([0x80, 5]),
      Buffer.from([0x42, n & 0xff, (n >> 8) & 0xff, n >> 16, 0]),
      Buffer.alloc(n, 7),
      Buffer.from("\x94cnumpy.core.numeric\n_frombuffer\n\x94cnumpy\ndtype\n", "latin1"),
      Buffer.from(
        "X\x02\x00\x00\x00u1\x89\x88\x87R(K\x03X\x01\x00\x00\x00|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x94",
        "latin1",
      ),
    ]);
    const again = Buffer.from(
      "h\x01(h\x00h\x02J\xa0\x86\x01\x00\x85X\x01\x00\x00\x00Ct\x52\x30",
      "latin1",
    );
    const pickle = Buffer.concat([
      head,
      ...Array.from({ length: 20_000 }, () => again),
      Buffer.from("N."),
    ]);
    const start = performance.now();
    expect(() => decode(pickle)).toThrow(PickleDecodeError);
    expect(() => decode(pickle)).toThrow(/copies more than the pickle's own length/);
    expect(performance.now() - start).toBeLessThan(1000);
    // Once is what numpy writes.
    const once = Buffer.concat([head, again.subarray(0, -1), Buffer.from(".")]);
    expect((decode(once) as NdArray).length).toBe(n);
  });
});

describe("numpy 2 pickles (numpy._core)", () => {
  interface Case {
    expr: string;
    expected: { shape?: number[]; dtype?: string; items?: unknown[]; scalar?: unknown };
    pickles: Record<string, string>;
  }
  const stored = JSON.parse(
    readFileSync(new URL("./__fixtures__/numpy2-pickles.json", import.meta.url), "utf8"),
  ) as { numpy: string; cases: Case[] };

  it("decode as numpy 1's do, and re-encode naming numpy._core", () => {
    expect(stored.numpy).toMatch(/^2\./);
    for (const { expr, expected, pickles } of stored.cases) {
      for (const pickle of Object.values(pickles)) {
        const value = decode(unb64(pickle));
        if (expected.scalar !== undefined) {
          const big = typeof expected.scalar === "string" ? BigInt(expected.scalar) : undefined;
          const safe = big !== undefined && big >= -(2n ** 53n - 1n) && big <= 2n ** 53n - 1n;
          const want = big === undefined ? expected.scalar : safe ? Number(big) : big;
          expect(value, expr).toBe(want);
          continue;
        }
        const a = value as NdArray;
        expect(isNdArray(a), expr).toBe(true);
        expect(a.shape, expr).toEqual(expected.shape);
        expect(a.dtype, expr).toBe(expected.dtype);
        const want = (expected.items as unknown[]).map((x) =>
          typeof x === "string"
            ? a.dtype.endsWith("64")
              ? BigInt(x)
              : Number(x)
            : typeof x === "boolean"
              ? Number(x)
              : x,
        );
        expect([...a], expr).toEqual(want);
        const again = encode(a, { protocol: 4 });
        expect(Buffer.from(again).includes("numpy._core."), expr).toBe(true);
        expect([...(decode(again) as NdArray)], expr).toEqual(want);
      }
    }
  });
});
