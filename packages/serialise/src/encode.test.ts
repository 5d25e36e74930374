import { execFileSync } from "node:child_process";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PYTHON } from "./__fixtures__/python.js";
import {
  asTuple,
  bytearray,
  DEFAULT_MAX_DEPTH,
  decode,
  encode,
  encodeTuple,
  frozenset,
  PickleEncodeError,
  PyGlobal,
  PyObject,
  py,
  pyFloat,
  tuple,
} from "./index.js";

function encodeError(value: unknown, options?: Parameters<typeof encode>[1]): PickleEncodeError {
  try {
    encode(value, options);
  } catch (error) {
    expect(error).toBeInstanceOf(PickleEncodeError);
    expect((error as PickleEncodeError).code).toBe("PICKLE_ENCODE");
    return error as PickleEncodeError;
  }
  throw new Error("encode did not throw");
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("encode: output", () => {
  it("writes the same bytes as CPython for numbers and lists of them (protocols 2 and 3)", () => {
    const values = [
      0,
      255,
      256,
      65535,
      65536,
      -1,
      2 ** 31 - 1,
      -(2 ** 31),
      2 ** 31,
      -(2 ** 31) - 1,
      2 ** 53 - 1,
    ];
    const big = [2n ** 63n, -(2n ** 64n), -128n, 127n, 128n, -129n, 2n ** 2100n];
    const script = `
import pickle, sys
vals = [0, 255, 256, 65535, 65536, -1, 2**31 - 1, -(2**31), 2**31, -(2**31) - 1, 2**53 - 1]
big = [2**63, -(2**64), -128, 127, 128, -129, 2**2100]
for p in (2, 3):
    print(pickle.dumps(vals, p).hex(), pickle.dumps(big, p).hex(), pickle.dumps(1.5, p).hex(), pickle.dumps(True, p).hex())`;
    const lines = execFileSync(PYTHON, ["-c", script], { encoding: "utf8" }).trim().split("\n");
    for (const [i, protocol] of ([2, 3] as const).entries()) {
      const [v, b, f, t] = (lines[i] as string).split(" ");
      expect(hex(encode(values, { protocol }))).toBe(v);
      expect(hex(encode(big, { protocol }))).toBe(b);
      expect(hex(encode(1.5, { protocol }))).toBe(f);
      expect(hex(encode(true, { protocol }))).toBe(t);
    }
  });

  it("frames protocol 4 and 5 pickles in one FRAME, and protocols 2 and 3 not at all", () => {
    for (const protocol of [4, 5] as const) {
      const b = encode(["a", 1], { protocol });
      expect([b[0], b[1], b[2]]).toEqual([0x80, protocol, 0x95]);
      expect(Buffer.from(b).readBigUInt64LE(3)).toBe(BigInt(b.length - 11));
      expect(b[b.length - 1]).toBe(0x2e);
    }
    expect([...encode(null, { protocol: 2 })]).toEqual([0x80, 2, 0x4e, 0x2e]);
    expect([...encode(null, { protocol: 3 })]).toEqual([0x80, 3, 0x4e, 0x2e]);
    expect(encode(null)[1]).toBe(4);
  });

  it("chooses int for safe integers, float otherwise; pyFloat forces float", () => {
    expect(decode(encode([3, -0, 2 ** 53, 0.5]))).toEqual([3, -0, 2 ** 53, 0.5]);
    const ints = encode(3);
    expect(ints[11]).toBe(0x4b); // BININT1
    expect(encode(-0)[11]).toBe(0x47); // BINFLOAT
    expect(encode(2 ** 53)[11]).toBe(0x47);
    expect(encode(pyFloat(3))[11]).toBe(0x47);
    expect(+pyFloat(2.5)).toBe(2.5);
  });

  it("writes the encodings of each protocol for bytes, bytearray, sets and globals", () => {
    // protocol 2 has no bytes opcodes: CPython writes _codecs.encode(latin1 text, 'latin1')
    const b2 = encode(new Uint8Array([0, 200]), { protocol: 2 });
    expect(Buffer.from(b2).includes("c_codecs\nencode\n")).toBe(true);
    expect(
      Buffer.from(encode(new Uint8Array(0), { protocol: 2 })).includes("c__builtin__\nbytes\n"),
    ).toBe(true);
    expect(Buffer.from(encode(bytearray([1]), { protocol: 4 })).includes("bytearray")).toBe(true);
    expect(encode(bytearray([1]), { protocol: 5 })[11]).toBe(0x96); // BYTEARRAY8
    expect(Buffer.from(encode(new Set([1]), { protocol: 3 })).includes("cbuiltins\nset\n")).toBe(
      true,
    );
    expect(Buffer.from(encode(new Set([1]), { protocol: 2 })).includes("c__builtin__\nset\n")).toBe(
      true,
    );
    expect(encode(new Set([1]), { protocol: 4 })[11]).toBe(0x8f); // EMPTY_SET
    // nested qualified names before protocol 4 go through getattr, as CPython does
    const nested = Buffer.from(encode(new PyGlobal("m", "A.B"), { protocol: 3 }));
    expect(nested.includes("cbuiltins\ngetattr\n")).toBe(true);
    expect(nested.includes("cm\nA\n")).toBe(true);
  });

  it("keeps shared references and cycles, and writes each object once", () => {
    const shared = { x: [1, 2, 3] };
    const v = [shared, shared, tuple(shared)];
    const back = decode(encode(v)) as unknown[];
    expect(back[0]).toBe(back[1]);
    expect((back[2] as unknown[])[0]).toBe(back[0]);
    const cyc: Record<string, unknown> = {};
    cyc.me = cyc;
    const c = decode(encode(cyc)) as Record<string, unknown>;
    expect(c.me).toBe(c);
    // a tuple reached again through a list it contains (CPython's POP_MARK + GET case)
    const l: unknown[] = [];
    const t = asTuple([l, 1, 2, 3]);
    l.push(t);
    const tb = decode(encode(t)) as unknown[];
    expect((tb[0] as unknown[])[0]).toBe(tb);
  });

  it("writes dict keys once and refers back to them", () => {
    const rows = Array.from({ length: 100 }, (_, i) => ({ someLongKeyName: i }));
    expect(Buffer.from(encode(rows)).toString("latin1").split("someLongKeyName").length - 1).toBe(
      1,
    );
  });

  it("returns a fresh array each call, not a view of a shared buffer", () => {
    const a = encode("first");
    const b = encode("second");
    expect(decode(a)).toBe("first");
    expect(decode(b)).toBe("second");
    expect(a.buffer).not.toBe(b.buffer);
    expect(a.byteLength).toBe(a.buffer.byteLength);
  });

  it("writes a large bytes value straight into the output", () => {
    const big = new Uint8Array(5_000_000).fill(3);
    const out = encode(big);
    expect(out.length).toBe(big.length + 18);
    expect(out.buffer.byteLength - out.length).toBeLessThan(out.length / 8);
    expect(Buffer.from(decode(out) as Uint8Array).equals(Buffer.from(big))).toBe(true);
  });
});

describe("encode: a tuple of scalars", () => {
  // Given maxDepth, encode goes through the whole encoder: what the short way must match.
  const general = (items: unknown[], protocol: 4 | 5) =>
    encode(tuple(...items), { protocol, maxDepth: DEFAULT_MAX_DEPTH });
  const scalar = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    fc.integer({ min: 0, max: 70_000 }),
    fc.double(),
    fc.constantFrom(-0, 2 ** 31, -(2 ** 31) - 1, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY),
    fc.string({ maxLength: 3 }),
  );

  it("is written byte for byte as the encoder writes it, marked or not", () => {
    fc.assert(
      fc.property(
        fc.array(scalar, { maxLength: 4 }),
        fc.constantFrom(4 as const, 5 as const),
        (items, protocol) => {
          const want = hex(general(items, protocol));
          expect(hex(encode(tuple(...items), { protocol }))).toBe(want);
          expect(hex(encodeTuple(items, { protocol }))).toBe(want);
        },
      ),
      { numRuns: 3_000 },
    );
  });

  it("leaves the array unmarked, and loads in CPython as the tuple it is", () => {
    const items = [7, 1000, -5, 1.5, null, true, 2 ** 40, "x"];
    const rows = [items.slice(0, 3), items.slice(3, 6), items.slice(6)];
    const pickles = rows.map((row) => Buffer.from(encodeTuple(row)).toString("base64"));
    expect(rows.every((row) => Object.getPrototypeOf(row) === Array.prototype)).toBe(true);
    const script = `
import base64, pickle, sys
for line in sys.stdin.read().split():
    print(repr(pickle.loads(base64.b64decode(line))))
`;
    const out = execFileSync(PYTHON, ["-c", script], {
      input: pickles.join("\n"),
      encoding: "utf8",
    });
    expect(out.trim().split("\n")).toEqual([
      "(7, 1000, -5)",
      "(1.5, None, True)",
      "(1099511627776, 'x')",
    ]);
  });
});

describe("encode: errors", () => {
  it("names where an unpicklable value sits", () => {
    expect(encodeError({ a: [1, undefined] }).path).toBe("value.a[1]");
    expect(encodeError({ a: [1, undefined] }).message).toBe(
      "[sheepdog] [serialise] Cannot pickle value.a[1]: undefined has no Python equivalent; use null for None.",
    );
    expect(encodeError([() => 1]).message).toContain("a function has no Python equivalent");
    expect(encodeError({ "odd key": Symbol("s") }).path).toBe('value["odd key"]');
    expect(encodeError(new Map([["k", new Date()]])).message).toContain('value.get("k")');
    expect(encodeError([new Int16Array(2)]).message).toContain("Int16Array is not bytes");
    expect(encodeError(new (class Foo {})()).message).toContain("a Foo is not a plain object");
    expect(encodeError({ f: py`def f(): pass` }).message).toContain("a py function is not data");
  });

  it("refuses keys and set elements Python cannot hash", () => {
    expect(encodeError(new Map([[[1], 1]])).message).toContain("make it a tuple with tuple(...)");
    expect(encodeError(new Set([new Set()])).message).toContain("use frozenset(...)");
    expect(encodeError(new Set([{}])).message).toContain(
      "an object (a Python dict) cannot be a set element",
    );
    expect(encodeError(frozenset([bytearray()])).message).toContain(
      "bytearray cannot be a frozenset element",
    );
    expect(encode(new Map([[tuple(1, frozenset([2])), 1]]))).toBeInstanceOf(Uint8Array);
  });

  it("stops at maxDepth, at cycles made only of tuples, and at objects that construct themselves", () => {
    let deep: unknown = 0;
    for (let i = 0; i < 1500; i++) deep = [deep];
    expect(encodeError(deep).message).toContain("maxDepth (1000)");
    expect(decode(encode(deep, { maxDepth: 2000 }), { maxDepth: 2000 })).toEqual(deep);
    const t = asTuple<unknown>([]);
    t.push(t);
    expect(encodeError(t).message).toContain("cycle made only of tuples");
    const o = new PyObject({ callable: new PyGlobal("m", "f"), args: [] });
    o.args.push(o);
    expect(encodeError(o).message).toContain(
      "cycle through its own constructor arguments that Python cannot rebuild",
    );
  });

  it("turns a JavaScript stack overflow into PICKLE_ENCODE", () => {
    let deep: unknown = 0;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(encodeError(deep, { maxDepth: 1_000_000 }).message).toContain(
      "too deeply for the JavaScript stack",
    );
  });

  it("checks its options", () => {
    expect(() => encode(1, { protocol: 6 as 4 })).toThrow(
      expect.objectContaining({ code: "CONFIG_INVALID" }),
    );
    expect(() => encode(1, { protocol: 1 as 4 })).toThrow(/Use 2, 3, 4 or 5/);
    expect(() => encode(1, { maxDepth: 0 })).toThrow(
      expect.objectContaining({ code: "CONFIG_INVALID" }),
    );
    expect(encodeError(new PyGlobal("a\nb", "c")).message).toContain("without newlines");
    expect(
      encodeError(new PyObject({ callable: new PyGlobal("m", "f"), args: "x" as unknown as [] }))
        .message,
    ).toContain("args of a PyObject must be an array");
  });
});
