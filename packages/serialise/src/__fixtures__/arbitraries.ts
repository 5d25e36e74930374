import fc from "fast-check";
import { asTuple, bytearray, frozenset, ndarray, PyGlobal, PyObject, pyFloat } from "../index.js";

/**
 * A key that is equal for values Python considers equal (1, 1n and true; equal tuples), so that
 * generated dict keys and set elements stay distinct on both sides.
 */
export function pyKey(v: unknown): string {
  if (v === null) return "None";
  if (typeof v === "boolean") return v ? "i:1" : "i:0";
  if (typeof v === "number") return Number.isInteger(v) ? `i:${BigInt(v)}` : `f:${v}`;
  if (typeof v === "bigint") return `i:${v}`;
  if (typeof v === "string") return `s:${v}`;
  if (v instanceof Uint8Array) return `b:${Buffer.from(v).toString("hex")}`;
  if (Array.isArray(v)) return `t(${v.map(pyKey).join(",")})`;
  if (v instanceof Set) return `f{${[...v].map(pyKey).sort().join(",")}}`;
  throw new Error("not hashable");
}

const text = fc.oneof(
  fc.string({ unit: "binary", maxLength: 12 }),
  // Lone surrogates, BOM, NUL, backslash, astral: the awkward corners of UTF-8 and of protocol 0.
  fc
    .array(fc.constantFrom("\ud800", "\udfff", "\ufeff", "\0", "\\", "\n", "😀", "é", "a"), {
      maxLength: 8,
    })
    .map((cs) => cs.join("")),
  fc.constantFrom("x".repeat(85), "é".repeat(86), "y".repeat(300)),
);

const integer = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  fc.constantFrom(0, 255, 256, 65535, 65536, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1),
  fc.bigInt({ min: -(2n ** 2100n), max: 2n ** 2100n }),
  fc.constantFrom(
    2n ** 53n,
    -(2n ** 53n),
    2n ** 63n,
    -(2n ** 64n),
    2n ** 2048n - 1n,
    -(2n ** 2048n),
  ),
);

const scalar = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  integer,
  fc.double(),
  fc.double().map(pyFloat),
  text,
  fc.uint8Array({ maxLength: 40 }),
  fc.uint8Array({ maxLength: 40 }).map((b) => bytearray(b)),
);

/** Values Python can hash, without duplicates by Python's equality (no NaN: it never equals). */
const hashable: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  h: fc.oneof(
    { depthSize: "small" },
    fc.integer(),
    fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }),
    fc.string({ unit: "binary", maxLength: 8 }),
    fc.constant(null),
    fc.uint8Array({ maxLength: 4 }),
    fc.uniqueArray(tie("h"), { selector: pyKey, maxLength: 3 }).map((xs) => asTuple(xs)),
    fc.uniqueArray(tie("h"), { selector: pyKey, maxLength: 3 }).map((xs) => frozenset(xs)),
  ),
})).h;

const dictKey = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: "binary", maxLength: 8 }) },
  fc.constantFrom("__proto__", "constructor", "toString", "0", "1", "10", "-1", "", "a b"),
);

function cyclic(): fc.Arbitrary<unknown> {
  return fc.constantFrom("list", "object", "map", "tuple-through-list").map((kind) => {
    if (kind === "list") {
      const l: unknown[] = [1];
      l.push(l);
      return l;
    }
    if (kind === "object") {
      const o: Record<string, unknown> = { a: 1 };
      o.self = o;
      o.inner = [o, { back: o }];
      return o;
    }
    if (kind === "map") {
      const m = new Map<unknown, unknown>([[1, "one"]]);
      m.set(2, m);
      return m;
    }
    const l: unknown[] = [];
    const t = asTuple([l, "t"]);
    l.push(t);
    return t;
  });
}

const opaque = fc.oneof(
  fc.constantFrom(new PyGlobal("builtins", "int"), new PyGlobal("collections", "OrderedDict")),
  fc.tuple(fc.double(), fc.double()).map(
    ([re, im]) =>
      new PyObject({
        callable: new PyGlobal("builtins", "complex"),
        args: [pyFloat(re), pyFloat(im)],
      }),
  ),
  fc
    .uniqueArray(fc.tuple(fc.string({ maxLength: 5 }), fc.integer()), {
      selector: ([k]) => k,
      maxLength: 4,
    })
    .map(
      (items) =>
        new PyObject({
          callable: new PyGlobal("collections", "OrderedDict"),
          args: [],
          dictItems: items,
        }),
    ),
);

/** numpy arrays of each dtype read as typed arrays, 0-d to 3-d, some empty. */
const numpyArray = fc
  .constantFrom<number[]>([4], [1], [], [0], [2, 3], [3, 0, 2], [2, 2, 2])
  .chain((shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return fc.oneof(
      fc.float64Array({ minLength: n, maxLength: n }).map((d) => ndarray(d, { shape })),
      fc.float32Array({ minLength: n, maxLength: n }).map((d) => ndarray(d, { shape })),
      fc.int32Array({ minLength: n, maxLength: n }).map((d) => ndarray(d, { shape })),
      fc.int16Array({ minLength: n, maxLength: n }).map((d) => ndarray(d, { shape })),
      fc.uint8Array({ minLength: n, maxLength: n }).map((d) => ndarray(d, { shape })),
      fc
        .uint8Array({ minLength: n, maxLength: n, max: 1 })
        .map((d) => ndarray(d, { shape, dtype: "bool" })),
      fc.bigInt64Array({ minLength: n, maxLength: n }).map((d) => ndarray(d, { shape })),
      fc.bigUint64Array({ minLength: n, maxLength: n }).map((d) => ndarray(d, { shape })),
    );
  });

/** Any value `encode` takes, nested a few levels, with shared and recursive references. */
export const anyValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalar,
    tie("list"),
    tie("tuple"),
    tie("dict"),
    tie("map"),
    tie("set"),
    tie("frozen"),
    tie("shared"),
    cyclic(),
    opaque,
    numpyArray,
  ),
  list: fc.array(tie("value"), { maxLength: 5 }),
  tuple: fc.array(tie("value"), { maxLength: 5 }).map((xs) => asTuple(xs)),
  dict: fc
    .uniqueArray(fc.tuple(dictKey, tie("value")), { selector: ([k]) => k, maxLength: 5 })
    .map((entries) => {
      const o: Record<string, unknown> = {};
      for (const [k, v] of entries) {
        Object.defineProperty(o, k, {
          value: v,
          writable: true,
          enumerable: true,
          configurable: true,
        });
      }
      return o;
    }),
  map: fc
    .uniqueArray(fc.tuple(hashable, tie("value")), { selector: ([k]) => pyKey(k), maxLength: 4 })
    .map((entries) => new Map(entries)),
  set: fc.uniqueArray(hashable, { selector: pyKey, maxLength: 5 }).map((xs) => new Set(xs)),
  frozen: fc.uniqueArray(hashable, { selector: pyKey, maxLength: 5 }).map((xs) => frozenset(xs)),
  shared: tie("value").map((v) => [v, asTuple([v]), { again: v }]),
})).value;
