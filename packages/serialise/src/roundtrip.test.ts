import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { anyValue } from "./__fixtures__/arbitraries.js";
import { b64, PythonOracle, unb64 } from "./__fixtures__/python.js";
import { sameValue } from "./__fixtures__/same.js";
import {
  bytearray,
  decode,
  encode,
  frozenset,
  isByteArray,
  isFrozenSet,
  isNdArray,
  isTuple,
  type PickleProtocol,
  PyGlobal,
  PyObject,
  pyFloat,
  tuple,
} from "./index.js";

const oracle = PythonOracle.start();
afterAll(() => oracle.close());

const WRITE: PickleProtocol[] = [2, 3, 4, 5];
const READ = [0, 1, 2, 3, 4, 5];

describe("JavaScript -> Python -> JavaScript", () => {
  it("any value survives a round trip through CPython at every protocol (fast-check)", async () => {
    await fc.assert(
      fc.asyncProperty(
        anyValue,
        fc.constantFrom(...WRITE),
        fc.constantFrom(...READ),
        async (value, writeProtocol, pythonProtocol) => {
          const bytes = encode(value, { protocol: writeProtocol });
          const reply = await oracle.request({
            op: "reload",
            pickle: b64(bytes),
            protocol: pythonProtocol,
          });
          const back = decode(unb64(reply.pickle));
          const difference = sameValue(value, back);
          if (difference !== undefined) {
            throw new Error(`${difference} (Python saw ${reply.repr})`);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it("Python loads exactly the values the mapping promises", async () => {
    const shared = [1];
    const cyclic: unknown[] = [1];
    cyclic.push(cyclic);
    const cases: [unknown, string][] = [
      [null, "None"],
      [true, "True"],
      [3, "3"],
      [-0, "-0.0"],
      [pyFloat(3), "3.0"],
      [2.5, "2.5"],
      [Number.NaN, "float('nan')"],
      [Number.NEGATIVE_INFINITY, "float('-inf')"],
      [2 ** 53 - 1, "2**53 - 1"],
      [2 ** 53, "float(2**53)"],
      [1e300, "1e300"],
      [2n ** 100n, "2**100"],
      [-(2n ** 100n), "-(2**100)"],
      [5n, "5"],
      ["😀 é \ud800", "'😀 é \\ud800'"],
      [new Uint8Array([0, 255]), "b'\\x00\\xff'"],
      [bytearray([1, 2]), "bytearray(b'\\x01\\x02')"],
      [[1, "a"], "[1, 'a']"],
      [tuple(1, "a"), "(1, 'a')"],
      [tuple(), "()"],
      [{ a: 1, __proto__: null }, "{'a': 1}"],
      [JSON.parse('{"__proto__": 1}'), "{'__proto__': 1}"],
      [
        new Map<unknown, unknown>([
          [1, "x"],
          [tuple(1, 2), "y"],
        ]),
        "{1: 'x', (1, 2): 'y'}",
      ],
      [new Set([1, "a"]), "{1, 'a'}"],
      [frozenset([tuple(1)]), "frozenset({(1,)})"],
      [[shared, shared], "(lambda s: [s, s])([1])"],
      [cyclic, "(lambda l: (l.append(l), l)[1])([1])"],
      [new PyGlobal("math", "sqrt"), "math.sqrt"],
      [new PyGlobal("collections", "OrderedDict"), "collections.OrderedDict"],
      [new PyGlobal("fx", "Outer.Inner"), "fx.Outer.Inner"],
      // Python 2 names that CPython would read back as another global (OSError, bz2) stay.
      [new PyGlobal("builtins", "FileNotFoundError"), "FileNotFoundError"],
      [new PyGlobal("builtins", "ModuleNotFoundError"), "ModuleNotFoundError"],
      [new PyGlobal("_bz2", "BZ2Decompressor"), "__import__('_bz2').BZ2Decompressor"],
      [new PyGlobal("builtins", "range"), "range"],
      [
        new PyObject({ callable: new PyGlobal("decimal", "Decimal"), args: ["1.10"] }),
        "decimal.Decimal('1.10')",
      ],
      [
        new PyObject({
          callable: new PyGlobal("collections", "OrderedDict"),
          dictItems: [
            ["b", 1],
            ["a", 2],
          ],
        }),
        "collections.OrderedDict([('b', 1), ('a', 2)])",
      ],
    ];
    // fx is importable as sheepdog_fixtures; the expression namespace calls it fx.
    const module = (v: unknown) =>
      v instanceof PyGlobal && v.module === "fx" ? new PyGlobal("sheepdog_fixtures", v.name) : v;
    const requests = cases.flatMap(([value, expr]) =>
      WRITE.map((protocol) => ({
        op: "check",
        expr,
        pickle: b64(encode(module(value), { protocol })),
        label: `${expr} @${protocol}`,
      })),
    );
    const results = await oracle.batch(requests);
    const failures = results
      .map((r, i) =>
        r.ok ? undefined : `${requests[i]?.label}: ${r.detail ?? r.error} (got ${r.repr})`,
      )
      .filter((x) => x !== undefined);
    expect(failures).toEqual([]);
  });
});

describe("Python -> JavaScript", () => {
  it("decodes each kind to its JavaScript form at protocols 0 to 5", async () => {
    const exprs = [
      "None",
      "True",
      "False",
      "0",
      "-1",
      "2**53 - 1",
      "-(2**53 - 1)",
      "2**53",
      "-(2**53)",
      "10**40",
      "1.5",
      "3.0",
      "-0.0",
      "float('nan')",
      "float('inf')",
      "'é😀'",
      "'\\ud800x'",
      "b'\\x00ab'",
      "bytearray(b'xy')",
      "[1, [2]]",
      "(1, (2,))",
      "()",
      "{'a': 1, 'b': {}}",
      "{1: 'a'}",
      "{'a': 1, 2: 'b'}",
      "{1, 2}",
      "frozenset({3})",
      "set()",
      "frozenset()",
      "b''",
      "bytearray()",
    ];
    const replies = await oracle.batch(
      exprs.map((expr) => ({ op: "dump", expr, protocols: READ })),
    );
    const seen = replies.map((r) => (r.pickles as string[]).map((p) => decode(unb64(p))));
    for (const [i, perProtocol] of seen.entries()) {
      for (const v of perProtocol) expect(v, exprs[i]).toEqual(perProtocol[0]);
    }
    const at = (expr: string) => seen[exprs.indexOf(expr)]?.[4];
    expect(at("None")).toBeNull();
    expect(at("True")).toBe(true);
    expect(at("2**53 - 1")).toBe(2 ** 53 - 1);
    expect(at("-(2**53 - 1)")).toBe(-(2 ** 53 - 1));
    expect(at("2**53")).toBe(2n ** 53n);
    expect(at("-(2**53)")).toBe(-(2n ** 53n));
    expect(at("10**40")).toBe(10n ** 40n);
    expect(at("3.0")).toBe(3);
    expect(Object.is(at("-0.0"), -0)).toBe(true);
    expect(at("float('nan')")).toBeNaN();
    expect(at("float('inf')")).toBe(Number.POSITIVE_INFINITY);
    expect(at("'é😀'")).toBe("é😀");
    expect(at("'\\ud800x'")).toBe("\ud800x");
    expect(at("b'\\x00ab'")).toEqual(new Uint8Array([0, 97, 98]));
    expect(isByteArray(at("b'\\x00ab'"))).toBe(false);
    expect(isByteArray(at("bytearray(b'xy')"))).toBe(true);
    expect(isTuple(at("[1, [2]]"))).toBe(false);
    expect(isTuple(at("(1, (2,))"))).toBe(true);
    expect(isTuple((at("(1, (2,))") as unknown[])[1])).toBe(true);
    expect(at("{'a': 1, 'b': {}}")).toEqual({ a: 1, b: {} });
    expect(at("{1: 'a'}")).toEqual(new Map([[1, "a"]]));
    expect(at("{'a': 1, 2: 'b'}")).toEqual(
      new Map<unknown, unknown>([
        ["a", 1],
        [2, "b"],
      ]),
    );
    expect(at("{1, 2}")).toEqual(new Set([1, 2]));
    expect(isFrozenSet(at("{1, 2}"))).toBe(false);
    expect(isFrozenSet(at("frozenset({3})"))).toBe(true);
    expect(isFrozenSet(at("frozenset()"))).toBe(true);
  });

  it("keeps datetimes, Decimals, Fractions, complex, OrderedDict and dataclasses opaque, makes numpy arrays typed arrays, and Python loads them back equal", async () => {
    const exprs = [
      "np.arange(12, dtype='f8').reshape(3, 4)",
      "np.asfortranarray(np.arange(6, dtype='i4').reshape(2, 3))",
      "np.array([1 + 2j, np.nan], dtype='c16')",
      "np.array(['ab', 'c'])",
      "np.zeros((0, 3))",
      "np.array(5.5)",
      // (Not a big-endian dtype: numpy 1.24's own pickle loses the byte order before protocol 5.)
      "np.array([(1, 2.5)], dtype=[('a', '<i4'), ('b', 'f8')])",
      "[np.arange(2), np.arange(2)]",
      "datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc)",
      "datetime.date(1999, 12, 31)",
      "datetime.timedelta(days=-3, microseconds=7)",
      "decimal.Decimal('-1.500')",
      "fractions.Fraction(-7, 3)",
      "complex(1.5, -2)",
      "collections.OrderedDict([('z', 1), ('a', [2])])",
      "collections.deque([1, 2], maxlen=4)",
      "collections.Counter('hello')",
      "fx.Point(1.5, 2.0, 'p')",
      "fx.Frozen(1, (2, 'x'))",
      "fx.Pair(1, [2])",
      "fx.Color.RED",
      "fx.Outer.Inner(3)",
      "fx.Slotted(1, [2])",
      "fx.KwOnly(size=9)",
      "fx.WithState(21)",
      "fx.make_bag()",
      "range(2, 20, 3)",
      "int",
      "math.sqrt",
    ];
    const replies = await oracle.batch(
      exprs.map((expr, i) => ({ op: "dump", expr, protocols: READ, keep: `kind:${i}` })),
    );
    expect(replies.filter((r) => r.error !== undefined)).toEqual([]);
    const checks: Record<string, unknown>[] = [];
    replies.forEach((reply, i) => {
      (reply.pickles as string[]).forEach((pickle, readProtocol) => {
        const value = decode(unb64(pickle));
        for (const protocol of WRITE) {
          checks.push({
            op: "check",
            kept: `kind:${i}`,
            pickle: b64(encode(value, { protocol })),
            floatInt: true,
            label: `${exprs[i]} @${readProtocol}->${protocol}`,
          });
        }
      });
    });
    const results = await oracle.batch(checks);
    const failures = results
      .map((r, i) => (r.ok ? undefined : `${checks[i]?.label}: ${r.detail ?? r.error}`))
      .filter((x) => x !== undefined);
    expect(failures).toEqual([]);

    // And they decode to recipes that name their type, numpy arrays to typed arrays.
    const at = (i: number) => decode(unb64(replies[i]?.pickles[4]));
    const typeOf = (i: number) => (at(i) as PyObject).type;
    expect(isNdArray(at(0))).toBe(true);
    expect(typeOf(2)).toBe("numpy.ndarray");
    expect(typeOf(8)).toBe("datetime.datetime");
    expect(typeOf(11)).toBe("decimal.Decimal");
    expect(typeOf(14)).toBe("collections.OrderedDict");
    expect(typeOf(17)).toBe("sheepdog_fixtures.Point");
    expect(at(27)).toEqual(new PyGlobal("builtins", "int"));
  });

  it("random Python values of every kind survive decode + encode, every protocol in and out", async () => {
    const { values } = await oracle.request({
      op: "gen",
      seed: 20240601,
      count: 250,
      protocols: READ,
    });
    const checks: Record<string, unknown>[] = [];
    for (const v of values as { id: string; repr: string; pickles: string[] }[]) {
      v.pickles.forEach((pickle, readProtocol) => {
        const decoded = decode(unb64(pickle));
        for (const protocol of WRITE) {
          checks.push({
            op: "check",
            kept: v.id,
            pickle: b64(encode(decoded, { protocol })),
            floatInt: true,
            label: `${v.repr} @${readProtocol}->${protocol}`,
          });
        }
      });
    }
    const results = await oracle.batch(checks);
    const failures = results
      .map((r, i) => (r.ok ? undefined : `${checks[i]?.label}: ${r.detail ?? r.error}`))
      .filter((x) => x !== undefined);
    expect(failures.slice(0, 10)).toEqual([]);
  });

  it("reads pickles from the pure-Python pickler and from pickletools.optimize (no memo puts)", async () => {
    const expr =
      "[{'a': (1, 2.5, 'x'), 2: [b'y', bytearray(b'z')]}, {1, 2}, frozenset({'q'}), np.arange(3), 10**30]";
    const variants = [
      "pickle._dumps(VALUE, P)",
      "__import__('pickletools').optimize(pickle.dumps(VALUE, P))",
    ];
    // Each expression evaluates to a pickle (bytes), which the dump op pickles again.
    const raw = await oracle.batch(
      variants.flatMap((variant) =>
        READ.map((p) => ({
          op: "dump",
          expr: `${variant.replace("VALUE", expr).replace("P", String(p))}`,
          protocols: [4],
        })),
      ),
    );
    const checks = raw.map((r) => {
      const inner = decode(unb64(r.pickles[0])) as Uint8Array;
      return {
        op: "check",
        expr,
        pickle: b64(encode(decode(inner))),
        floatInt: true,
      };
    });
    const results = await oracle.batch(checks);
    expect(results.map((r) => r.detail ?? r.error ?? null)).toEqual(checks.map(() => null));
  });
});
