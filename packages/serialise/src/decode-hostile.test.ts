import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { PYTHON } from "./__fixtures__/python.js";
import { decode, isByteArray, isFrozenSet, PickleDecodeError } from "./index.js";

// Hostile input must cost time linear in its length. Each decode below is timed: most take a
// few milliseconds here, the largest refusals about 100 ms alone, and 253 ms was seen in CI
// beside the other packages' tests on this 2-core machine; so the bound is a second, which a
// quadratic path (seconds to minutes at this size) still fails. The smaller cases come first,
// so that a regression fails in seconds rather than hanging on the megabyte.

const MB = 1 << 20;
const BOUND_MS = 1_000;

type Part = string | number[] | Uint8Array;

/** The parts (Latin-1 text, byte values, bytes) one after another. */
const concat = (parts: Part[]): Uint8Array =>
  new Uint8Array(
    Buffer.concat(
      parts.map((p) =>
        typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p as number[]),
      ),
    ),
  );

const bytes = (...parts: Part[]): Uint8Array => concat(parts);

const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];

/** Protocol 2 (as the server requires) around protocol 0 text opcodes. */
const proto2 = (...parts: Part[]) => bytes([0x80, 2], ...parts);

/** Decodes `input` within the time bound: the value, or the PickleDecodeError it threw. */
function decodeQuickly(input: Uint8Array, bound = BOUND_MS): unknown {
  const start = performance.now();
  let outcome: unknown;
  try {
    outcome = decode(input);
  } catch (error) {
    if (!(error instanceof PickleDecodeError)) throw error;
    outcome = error;
  }
  const ms = performance.now() - start;
  expect(ms, `decoding ${input.length} bytes took ${ms.toFixed(0)} ms`).toBeLessThan(bound);
  return outcome;
}

/** The reason of the PickleDecodeError that decoding `input` throws, within the time bound. */
function quickReason(input: Uint8Array): string {
  const outcome = decodeQuickly(input);
  expect(outcome).toBeInstanceOf(PickleDecodeError);
  return (outcome as PickleDecodeError).reason;
}

describe("decode: protocol 0 text arguments in linear time", () => {
  it("FLOAT: digits followed by junk, 64 KB then 1 MB, in every shape of the literal", () => {
    for (const size of [64 * 1024, MB]) {
      const digits = "1".repeat(size);
      for (const text of [
        `${digits}x`,
        `${digits}e`,
        `${digits}e+`,
        `-${digits}.${digits}x`,
        `.${digits}.`,
        `1e${digits}x`,
        ` ${digits} 1`,
      ]) {
        expect(quickReason(proto2("F", text, "\n."))).toBe("its argument is not a float");
      }
    }
  });

  it("FLOAT: long valid literals, alone and a thousand to a pickle", () => {
    const digits = "7".repeat(MB);
    expect(decodeQuickly(proto2("F", "0".repeat(MB), "7.5\n."))).toBe(7.5);
    expect(decodeQuickly(proto2("F0.", digits, "e-5\n."))).toBe(Number(`0.${digits}e-5`));
    // Too large for a double: CPython refuses it (OverflowError), in linear time here too.
    expect(quickReason(proto2("F", digits, ".5\n."))).toBe("its argument is too large for a float");
    const lines = Array.from({ length: 1000 }, (_, i) => `F${i}.${"0".repeat(1000)}25\n`);
    const list = decodeQuickly(proto2("(", lines.join(""), "l.")) as number[];
    expect(list).toHaveLength(1000);
    expect(list[3]).toBe(3);
  });

  it("FLOAT: many separate junk lines, each in its own pickle", () => {
    const start = performance.now();
    for (let i = 0; i < 64; i++) {
      expect(quickReason(proto2("F", "9".repeat(16 * 1024), "e9x\n."))).toMatch(/not a float/);
    }
    expect(performance.now() - start).toBeLessThan(4 * BOUND_MS);
  });

  it("INT and LONG: a megabyte of digits, with and without junk, and many long LONGs", () => {
    const digits = "3".repeat(MB);
    expect(quickReason(proto2("I", digits, "\n."))).toMatch(/exceeds CPython's limit of 4300/);
    expect(quickReason(proto2("I-", digits, "x\n."))).toBe("its argument is not an integer");
    expect(quickReason(proto2("L", digits, "L\n."))).toMatch(/exceeds CPython's limit of 4300/);
    expect(quickReason(proto2("L+", digits, "LL\n."))).toBe("its argument is not an integer");
    // Octal, hex and binary (base 0, as CPython reads them) have no digit limit in CPython.
    expect(quickReason(proto2("I0", "7".repeat(MB), "\n."))).toBe("its argument is not an integer");
    expect(quickReason(proto2("I0", "0_".repeat(MB / 2), "\n."))).toBe(
      "its argument is not an integer",
    );
    expect(decodeQuickly(proto2("I", "0".repeat(MB), "1\n."))).toBe(1);
    expect(decodeQuickly(proto2("L0x", "f".repeat(MB), "L\n."))).toBe((1n << BigInt(4 * MB)) - 1n);
    expect(decodeQuickly(proto2("I-0b", "1_".repeat(MB / 2), "1\n."))).toBe(
      -((1n << BigInt(MB / 2 + 1)) - 1n),
    );
    // The longest integers CPython reads, 240 of them (about a megabyte).
    const longest = `-${"9".repeat(4300)}`;
    const list = decodeQuickly(proto2("(", `L${longest}L\n`.repeat(240), "l.")) as bigint[];
    expect(list).toHaveLength(240);
    expect(list[239]).toBe(BigInt(longest));
  });

  it("GET and PUT: a megabyte of digits is not a memo index", () => {
    const digits = "5".repeat(MB);
    expect(quickReason(proto2("N", "p", digits, "\n."))).toMatch(/memo index/);
    expect(quickReason(proto2("g", digits, "\n."))).toMatch(/memo index/);
    expect(quickReason(proto2("N", "p", "12345678901", "\n."))).toMatch(/memo index/);
    expect(decodeQuickly(proto2("Np4294967295\n0g4294967295\n."))).toBeNull();
  });

  it("STRING and UNICODE: a megabyte of escapes or backslashes", () => {
    expect(decodeQuickly(proto2("S'", "\\x41\\102".repeat(MB / 8), "'\n."))).toBe(
      "AB".repeat(MB / 8),
    );
    expect(quickReason(proto2("S'", "\\".repeat(MB - 1), "'\n."))).toMatch(/invalid escape/);
    expect(decodeQuickly(proto2("V", "\\u00e9".repeat(MB / 6), "\n."))).toBe("é".repeat(MB / 6));
    // An even run of backslashes is text: once a call-stack overflow past ~120,000 of them.
    expect(decodeQuickly(proto2("V", "\\".repeat(MB), "\n."))).toBe("\\".repeat(MB));
    expect(quickReason(proto2("V", "\\".repeat(MB - 1), "u\n."))).toMatch(/escape/);
  });

  it("STRING and UNICODE escapes read as CPython reads them", () => {
    const lines = [
      "S'\\x41\\101\\7\\1234\\q\\'\\\"\\n\\\\\\a\\b\\f\\v\\t\\r'",
      'S"\'\\xfF\\0\\08"',
      "V\\u00e9\\U0001F600\\\\u1234\\\\\\u0041\\x\\",
      "V\\\\\\\\",
    ];
    const pickles = lines.map((line) => proto2(line, "\n."));
    const script = `
import base64, json, pickle, sys
out = [[ord(c) for c in pickle.loads(base64.b64decode(p), encoding="latin1")] for p in json.load(sys.stdin)]
json.dump(out, sys.stdout)`;
    const python = JSON.parse(
      execFileSync(PYTHON, ["-W", "ignore", "-c", script], {
        input: JSON.stringify(pickles.map((p) => Buffer.from(p).toString("base64"))),
        encoding: "utf8",
      }),
    ) as number[][];
    const ours = pickles.map((p) => [...(decode(p) as string)].map((c) => c.codePointAt(0)));
    expect(ours).toEqual(python);
  });
});

describe("decode: no quadratic work through the memo", () => {
  /**
   * A pickle that memoizes a value (pushed by `value`) and a callable, then calls the callable
   * on the shared value 60,000 times: REDUCE(callable, (value, ...extra)), popped each time.
   */
  function rebuiltOverAndOver(value: Part[], callable: string, extra: number[] = []): Uint8Array {
    const again = [0x68, 1, 0x28, 0x68, 0, ...extra, 0x74, 0x52, 0x30];
    const parts: Part[] = [[0x80, 2], ...value, [0x94], `c${callable}\n`, [0x94]];
    for (let i = 0; i < 60_000; i++) parts.push(again);
    parts.push("N.");
    return concat(parts);
  }

  it("refuses to rebuild one shared list, bytes or str as a set, bytearray or bytes again and again", () => {
    const list: Part[] = ["(", ...Array.from({ length: 100_000 }, (_, i) => [0x4b, i & 0xff]), "l"];
    const blob: Part[] = [[0x42, ...u32(400_000)], "b".repeat(400_000)];
    const text: Part[] = [[0x58, ...u32(400_000)], "t".repeat(400_000)];
    const latin1 = [0x8c, 6, ...Buffer.from("latin1")];
    for (const input of [
      rebuiltOverAndOver(list, "builtins\nset"),
      rebuiltOverAndOver(list, "__builtin__\nfrozenset"),
      rebuiltOverAndOver(blob, "builtins\nbytearray"),
      rebuiltOverAndOver(text, "builtins\nbytearray", latin1),
      rebuiltOverAndOver(text, "_codecs\nencode", latin1),
    ]) {
      expect(quickReason(input)).toMatch(/copies more than the pickle's own length/);
    }
  });

  it("still reads what CPython writes with those reductions (protocols 0 to 3), however big", () => {
    const script = `
import base64, pickle
s = set(range(200000)); fs = frozenset(range(100000)); ba = bytearray(b"x" * 300000)
v = [s, s, fs, ba, ba, b"y" * 300000, bytearray(), bytearray(b"z"), b"", b"w", {1, "a"}]
for p in range(4):
    print(base64.b64encode(pickle.dumps(v, p)).decode())
# A bytearray alone: copied twice before protocol 3, bytearray(_codecs.encode(text, 'latin1')).
for p in range(4):
    print(base64.b64encode(pickle.dumps(bytearray(b"xyz" * 100), p)).decode())`;
    const lines = execFileSync(PYTHON, ["-c", script], { encoding: "utf8", maxBuffer: 1 << 26 })
      .trim()
      .split("\n")
      .map((line) => new Uint8Array(Buffer.from(line, "base64")));
    expect(lines).toHaveLength(8);
    for (const alone of lines.slice(4)) {
      const v = decodeQuickly(alone);
      expect(isByteArray(v)).toBe(true);
      expect(Buffer.from(v as Uint8Array).toString()).toBe("xyz".repeat(100));
    }
    for (const pickle of lines.slice(0, 4)) {
      const v = decodeQuickly(pickle, 4 * BOUND_MS) as unknown[];
      expect((v[0] as Set<number>).size).toBe(200_000);
      expect(v[1]).toBe(v[0]);
      expect(isFrozenSet(v[2])).toBe(true);
      expect(isByteArray(v[3])).toBe(true);
      expect((v[3] as Uint8Array).length).toBe(300_000);
      expect((v[5] as Uint8Array).length).toBe(300_000);
      expect(v.slice(6, 10).map((b) => (b as Uint8Array).length)).toEqual([0, 1, 0, 1]);
    }
  });

  it("names a global with one long shared str many times (Python 2 names) in linear time", () => {
    const name: Part[] = [[0x58, ...u32(500_000)], "m".repeat(500_000), [0x94]];
    const again = Array.from({ length: 80_000 }, () => [0x68, 0, 0x68, 0, 0x93, 0x30]);
    expect(decodeQuickly(concat([[0x80, 2], ...name, ...again, "N."]))).toBeNull();
  });

  it("uses one long shared str as the key of many dicts in linear time", () => {
    const key: Part[] = [[0x58, ...u32(500_000)], "k".repeat(500_000), [0x94, 0x30]];
    const again = Array.from({ length: 80_000 }, () => [0x7d, 0x68, 0, 0x4e, 0x73, 0x30]);
    expect(decodeQuickly(concat([[0x80, 2], ...key, ...again, "N."]))).toBeNull();
  });
});

describe("decode: huge lengths and deep nesting", () => {
  it("reads a megabyte LONG4, refuses a length past the input, stops a megabyte of MARKs", () => {
    const ones = new Uint8Array(MB).fill(0xff);
    expect(decodeQuickly(bytes([0x80, 2, 0x8b, ...u32(MB)], ones, "."))).toBe(-1);
    expect(
      quickReason(
        bytes([0x80, 4, 0x8d], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], ones, "."),
      ),
    ).toMatch(/length field/);
    expect(quickReason(bytes([0x80, 2], "(".repeat(MB), "."))).toMatch(/maxDepth/);
  });
});
