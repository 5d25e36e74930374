import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SheepdogError } from "@sheepdog/contracts";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PYTHON } from "./__fixtures__/python.js";
import { decode, encode, isTuple, PickleDecodeError, PyGlobal, PyObject, tuple } from "./index.js";

const bytes = (...parts: (string | number[] | Uint8Array)[]): Uint8Array =>
  Buffer.concat(
    parts.map((p) =>
      typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p as number[]),
    ),
  );

function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

function u64(n: bigint): number[] {
  return Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));
}

/** The PickleDecodeError that decoding `input` throws (fails the test if it does not). */
function decodeError(input: Uint8Array, options?: Parameters<typeof decode>[1]): PickleDecodeError {
  try {
    decode(input, options);
  } catch (error) {
    expect(error).toBeInstanceOf(PickleDecodeError);
    const e = error as PickleDecodeError;
    expect(e.code).toBe("PICKLE_DECODE");
    expect(SheepdogError.isInstance(e)).toBe(true);
    return e;
  }
  throw new Error("decode did not throw");
}

/** Pickles made by CPython, at every protocol, of values that use most opcodes. */
const samples: Uint8Array[] = (() => {
  const script = `
import pickle, pickletools, sys, base64, collections, datetime, decimal
import numpy as np
rec = [1]; rec.append(rec)
v = [None, True, 1, -300, 2**70, 1.5, 'é😀', b'b' * 300, bytearray(b'ba'), (1, 2), (1, 2, 3, 4),
     {'a': {1: 2}}, {1, 2}, frozenset({3}), rec, datetime.datetime(2020, 1, 1),
     decimal.Decimal('1.1'), collections.OrderedDict(a=1), np.arange(4), 'x' * 70000]
def unframed(data):
    # The same pickle without its FRAME opcodes (framing is optional), so that truncation hits
    # the other opcodes of protocols 4 and 5 too.
    ops = list(pickletools.genops(data))
    ends = [pos for _, _, pos in ops[1:]] + [len(data)]
    return b"".join(data[pos:end] for (op, _, pos), end in zip(ops, ends) if op.name != "FRAME")
for small in (False, True):
    for p in range(6):
        data = pickle.dumps(v[:-1] if small else v, p)
        print(base64.b64encode(data).decode())
        if p >= 4:
            print(base64.b64encode(unframed(data)).decode())
`;
  return execFileSync(PYTHON, ["-c", script], { encoding: "utf8", maxBuffer: 1 << 26 })
    .trim()
    .split("\n")
    .map((line) => new Uint8Array(Buffer.from(line, "base64")));
})();
const full = samples.slice(0, 8);
const small = samples.slice(8);

describe("decode: a pickle of one scalar", () => {
  it("reads ints, floats, None and bools of every framed protocol as CPython wrote them", () => {
    const script = `
import base64, math, pickle, pickletools
values = [None, True, False, 0, 1, 255, 256, 65535, 65536, -1, -2**31, 2**31 - 1, 2**31,
          1.5, -0.0, float('inf'), float('-inf'), float('nan'), 1e300, 5e-324]
def unframed(data):
    ops = list(pickletools.genops(data))
    ends = [pos for _, _, pos in ops[1:]] + [len(data)]
    return b"".join(data[pos:end] for (op, _, pos), end in zip(ops, ends) if op.name != "FRAME")
for v in values:
    text = repr(v)
    for p in range(2, 6):
        data = pickle.dumps(v, p)
        print(text, base64.b64encode(data).decode())
        if p >= 4:
            print(text, base64.b64encode(unframed(data)).decode())
`;
    const lines = execFileSync(PYTHON, ["-c", script], { encoding: "utf8" }).trim().split("\n");
    const expected: Record<string, unknown> = {
      None: null,
      True: true,
      False: false,
      inf: Number.POSITIVE_INFINITY,
      "-inf": Number.NEGATIVE_INFINITY,
      nan: Number.NaN,
      "-0.0": -0,
    };
    expect(lines.length).toBe(20 * 6);
    for (const line of lines) {
      const [text, b64] = line.split(" ") as [string, string];
      const want = text in expected ? expected[text] : Number(text);
      const got = decode(new Uint8Array(Buffer.from(b64, "base64")));
      expect(Object.is(got, want), `${text} from ${b64}: ${String(got)}`).toBe(true);
    }
  });

  it("leaves any other pickle to the machine, with its rules", () => {
    const bytes = (...values: number[]) => new Uint8Array(values);
    // What follows STOP is not read; a frame shorter than the rest is allowed.
    expect(decode(bytes(0x80, 5, 0x4b, 7, 0x2e, 0x4b))).toBe(7);
    expect(decode(bytes(0x80, 4, 0x95, 2, 0, 0, 0, 0, 0, 0, 0, 0x4b, 9, 0x2e))).toBe(9);
    // Two scalars on the stack: the top one.
    expect(decode(bytes(0x80, 2, 0x4b, 1, 0x4b, 2, 0x2e))).toBe(2);
    expect(() => decode(bytes(0x80, 6, 0x4b, 7, 0x2e))).toThrow(/protocol 6/);
    expect(() => decode(bytes(0x80, 5, 0x4d, 7, 0x2e))).toThrow(PickleDecodeError);
  });
});

describe("decode: valid input", () => {
  it("reads CPython's pickles of every protocol", () => {
    expect(samples).toHaveLength(16);
    for (const sample of full) {
      const v = decode(sample) as unknown[];
      expect(v).toHaveLength(20);
      expect(v[4]).toBe(2n ** 70n);
      expect((v[14] as unknown[])[1]).toBe(v[14]);
      expect((v[19] as string).length).toBe(70000);
    }
  });

  it("accepts a Buffer or an ArrayBuffer, and nothing else", () => {
    const pickle = encode([1, "a"]);
    expect(decode(Buffer.from(pickle))).toEqual([1, "a"]);
    expect(decode(pickle.slice().buffer)).toEqual([1, "a"]);
    expect(() => decode("gAJOLg==" as unknown as Uint8Array)).toThrow(
      expect.objectContaining({ code: "INVALID_INPUT" }),
    );
  });

  it("copies bytes by default and shares memory with the input under zeroCopy", () => {
    const pickle = encode(new Uint8Array(1000).fill(7));
    const copied = decode(pickle) as Uint8Array;
    const viewed = decode(pickle, { zeroCopy: true }) as Uint8Array;
    expect(copied).toEqual(viewed);
    expect(viewed.buffer).toBe(pickle.buffer);
    pickle.fill(9, pickle.length - 200, pickle.length - 2);
    expect(copied[900]).toBe(7);
    expect(viewed[900]).toBe(9);
  });

  it("never runs code: a REDUCE of os.system stays a recipe", () => {
    const dir = mkdtempSync(join(tmpdir(), "sheepdog-serialise-"));
    const marker = join(dir, "ran");
    try {
      const script = `
import os, pickle, sys
class Evil:
    def __reduce__(self):
        return (os.system, (${JSON.stringify(`touch ${marker}`)},))
sys.stdout.buffer.write(pickle.dumps(Evil(), 4))`;
      const pickle = new Uint8Array(execFileSync(PYTHON, ["-c", script]));
      const value = decode(pickle) as PyObject;
      expect(existsSync(marker)).toBe(false);
      expect(PyObject.isInstance(value)).toBe(true);
      expect(value.callable).toEqual(new PyGlobal("posix", "system"));
      expect([...value.args]).toEqual([`touch ${marker}`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("maps Python 2 names in old protocols to Python 3 ones, as CPython's fix_imports does", () => {
    // protocol 2: a set written by Python 2 (or by Python 3 with fix_imports)
    const py2set = bytes([0x80, 2], "c__builtin__\nset\nq\x00]q\x01(K\x01K\x02e\x85q\x02Rq\x03.");
    expect(decode(py2set)).toEqual(new Set([1, 2]));
    const xrange = bytes([0x80, 2], "c__builtin__\nxrange\nq\x00.");
    expect(decode(xrange)).toEqual(new PyGlobal("builtins", "range"));
    // protocol 3+ names are taken as written
    expect(decode(bytes([0x80, 3], "c__builtin__\nxrange\n."))).toEqual(
      new PyGlobal("__builtin__", "xrange"),
    );
  });

  it("reads Python 2 str opcodes (STRING, BINSTRING, SHORT_BINSTRING) as text", () => {
    expect(decode(bytes("S'a\\nb\\x41\\'c'\n."))).toBe("a\nbA'c");
    expect(decode(bytes("T", u32(2), "hi."))).toBe("hi");
    expect(decode(bytes("U\x02\xe9x."))).toBe("éx");
  });

  it("reads protocol 0 text: INT, LONG, FLOAT, UNICODE escapes, PUT/GET", () => {
    expect(decode(bytes("I01\n."))).toBe(true);
    expect(decode(bytes("I-42\n."))).toBe(-42);
    expect(decode(bytes("L123456789012345678901234567890L\n."))).toBe(
      123456789012345678901234567890n,
    );
    expect(decode(bytes("Finf\n."))).toBe(Number.POSITIVE_INFINITY);
    expect(decode(bytes("F-1.5e+300\n."))).toBe(-1.5e300);
    expect(decode(bytes("V\\u00e9\\U0001f600\\\\u1234\n."))).toBe("é😀\\\\u1234");
    expect(decode(bytes("(lp0\nI1\nag0\na."))).toEqual(expect.any(Array));
  });

  it("reads INT, LONG and FLOAT text exactly as CPython's unpickler does", () => {
    // INT goes through C's strtol (base 0: 010 is octal 8, 0x10 hex), then Python's int(x, 0)
    // when strtol stops early or overflows; LONG through int(x, 0) after dropping one L; both stop
    // at a NUL, as C strings do. Two-character INTs that strtol reads as 0 or 1 are bools.
    const ints = [
      ...["010", "00", "01", "0", "1", "-0", "+0", "+1", "-1", " 1", " 0", "1 ", "12", "\t5"],
      ...["5\t", " -5", "- 5", "0x10", "0X1f", "-0x10", "+0x10", "0o17", "0O17", "0b101"],
      ...["1_000", "0x_1f", "0_0", "007", "000", "08", "0x", "0xg", "-", "+", " ", "", "1__0"],
      ...["_1", "1_", "1e3", "1.0", "0o", "0b", "0b2", "\u0663", "1L", "0L", "010L", "L"],
      ...["9223372036854775807", "9223372036854775808", "-9223372036854775808"],
      ...["-9223372036854775809", "0777777777777777777777777", "0x7fffffffffffffffff"],
      ...["99999999999999999999", "00000000000000000000000000000001", "0b1111111111111111"],
      ...["1\u00002", "12\u0000", "\u000012", "0x1\u0000zz", "\u0000\u0000", "1\u0000"],
    ];
    const floats = [
      ...["1.5", " 1.5", "1.5 ", "1e999", "-1e999", "inf", "-Infinity", "nan", "+nan", "-nan"],
      ...["NaN", "iNf", "1_0.5", "0x1p3", "1.", ".", "1e", "1e+", "5", "1.5\u0000zz", "1.5L"],
      ...["1e-400", "infinit", "nanx", "", "+", "-0.0", "2.5E-3", "\u0663.5"],
    ];
    const cases = [...ints.flatMap((t) => [`I${t}`, `L${t}`]), ...floats.map((t) => `F${t}`)];
    const script = `
import json, pickle, sys
out = []
for line in json.load(sys.stdin):
    try:
        v = pickle.loads(b"(" + line.encode("utf-8") + b"\\nt.")[0]
        out.append(repr(v) if type(v) is not float else "float " + repr(v))
    except Exception:
        out.append("refused")
print(json.dumps(out))
`;
    const expected = JSON.parse(
      execFileSync(PYTHON, ["-c", script], { input: JSON.stringify(cases), encoding: "utf8" }),
    ) as string[];
    const ours = cases.map((line) => {
      try {
        const v = decode(Buffer.from(`(${line}\nt.`, "utf8"))?.[0 as never] as unknown;
        if (typeof v === "boolean") return v ? "True" : "False";
        if (typeof v === "bigint") return v.toString();
        if (line.startsWith("F")) {
          const n = v as number;
          if (Number.isNaN(n)) return "float nan";
          if (!Number.isFinite(n)) return n > 0 ? "float inf" : "float -inf";
          return `float ${Object.is(n, -0) ? "-0.0" : Number.isInteger(n) ? `${n}.0` : String(n)}`;
        }
        return String(v);
      } catch (error) {
        expect(error).toBeInstanceOf(PickleDecodeError);
        return "refused";
      }
    });
    const differences = cases
      .map((line, i) => [JSON.stringify(line), expected[i], ours[i]])
      .filter(([, want, got]) => want !== got);
    expect(differences).toEqual([]);
  });

  it("turns a dict into a Map when a non-str key arrives after it was shared", () => {
    // d = {'a': [d]}; d[1] = 2 -- written as CPython would: the list holds d before key 1 arrives
    const pickle = bytes([0x80, 4], "}\x94(\x8c\x01a\x94]\x94h\x00a", "K\x01K\x02u.");
    const d = decode(pickle) as Map<unknown, unknown>;
    expect(d).toBeInstanceOf(Map);
    expect((d.get("a") as unknown[])[0]).toBe(d);
    expect(d.get(1)).toBe(2);
  });

  it("turns a Python pair of lone surrogates into one astral character (a documented limit)", () => {
    const pickle = execFileSync(PYTHON, [
      "-c",
      "import pickle,sys; sys.stdout.buffer.write(pickle.dumps('\\ud83d\\ude00', 4))",
    ]);
    expect(decode(new Uint8Array(pickle))).toBe("😀");
  });

  it("decodes a memo DAG with 2^40 paths in linear time", () => {
    // l0 = []; l(i+1) = [li, li]: 41 levels deep, every list shared twice.
    const parts: (string | number[])[] = [[0x80, 4], "]\x94"];
    for (let i = 0; i < 40; i++) parts.push("]\x94(", [0x6a, ...u32(i)], [0x6a, ...u32(i)], "e");
    parts.push(".");
    const top = decode(bytes(...parts)) as unknown[];
    expect(top[0]).toBe(top[1]);
    expect(encode(top).length).toBeLessThan(1000);
  });
});

describe("decode: truncated, invalid and hostile input", () => {
  it("rejects proper prefixes of valid pickles, with PICKLE_DECODE", { timeout: 60_000 }, () => {
    const wrong: string[] = [];
    let tried = 0;
    for (const sample of small) {
      // Every cut in the first 200 bytes, then every third one.
      for (let n = 0; n < sample.length; n += n < 200 ? 1 : 3) {
        tried++;
        try {
          decode(sample.subarray(0, n));
          wrong.push(`prefix of ${n} bytes decoded`);
        } catch (error) {
          if (!(error instanceof PickleDecodeError) || error.offset > n)
            wrong.push(`${n}: ${error}`);
        }
      }
    }
    expect(tried).toBeGreaterThan(3000);
    expect(wrong).toEqual([]);
  });

  it("survives random corruption of valid pickles: a value or a PickleDecodeError, nothing else", {
    timeout: 60_000,
  }, () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...small),
        fc.array(
          fc.tuple(
            fc.nat(),
            fc.integer({ min: 0, max: 255 }),
            fc.constantFrom("set", "insert", "delete"),
          ),
          {
            minLength: 1,
            maxLength: 6,
          },
        ),
        (sample, edits) => {
          const b = [...sample];
          for (const [at, value, kind] of edits) {
            const i = at % (b.length + 1);
            if (kind === "set") b[i] = value;
            else if (kind === "insert") b.splice(i, 0, value);
            else b.splice(i, 1);
          }
          try {
            decode(new Uint8Array(b));
          } catch (error) {
            if (!(error instanceof PickleDecodeError)) throw error;
          }
        },
      ),
      { numRuns: 1500 },
    );
  });

  it("survives random bytes", { timeout: 60_000 }, () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        try {
          decode(b);
        } catch (error) {
          if (!(error instanceof PickleDecodeError)) throw error;
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("names the opcode and byte offset", () => {
    const e = decodeError(bytes([0x80, 4], "K\x01", [0xff], "."));
    expect(e.offset).toBe(4);
    expect(e.opcode).toBe("unknown opcode 0xff");
    expect(e.message).toBe(
      "[sheepdog] [serialise] Cannot decode pickle at byte 4 (unknown opcode 0xff): it is not a pickle opcode. The bytes are not a complete, valid pickle: check that they are exactly what pickle.dumps wrote.",
    );
    const t = decodeError(bytes([0x80, 4], "K"));
    expect([t.offset, t.opcode]).toEqual([2, "BININT1"]);
    expect(t.message).toContain("truncated");
    const end = decodeError(bytes([0x80, 4], "K\x01"));
    expect([end.offset, end.opcode, end.reason]).toEqual([
      4,
      undefined,
      "the input ends before the STOP opcode",
    ]);
  });

  it("rejects length fields larger than the input before allocating", () => {
    const cases: [Uint8Array, string][] = [
      [bytes("X", u32(0xffffffff), "ab"), "BINUNICODE"],
      [bytes([0x8d], u64(2n ** 62n), "ab"), "BINUNICODE8"],
      [bytes([0x8e], u64(2n ** 64n - 1n), "ab"), "BINBYTES8"],
      [bytes([0x96], u64(2n ** 40n)), "BYTEARRAY8"],
      [bytes("B", u32(2 ** 31)), "BINBYTES"],
      [bytes([0x8b], u32(0x7fffffff), "\x01"), "LONG4"],
      [bytes([0x8a, 200], "\x01"), "LONG1"],
      [bytes([0x80, 4, 0x95], u64(2n ** 50n), "N."), "FRAME"],
      [bytes("T", u32(2 ** 30), "x"), "BINSTRING"],
    ];
    for (const [input, opcode] of cases) {
      const e = decodeError(input);
      expect(e.opcode).toBe(opcode);
      expect(e.reason).toMatch(/length field says \d+ bytes but only \d+ remain/);
    }
    expect(decodeError(bytes([0x8b], u32(-5 >>> 0), ".")).reason).toBe(
      "its byte count is negative",
    );
  });

  it("stops deep nesting at maxDepth, however it is built", () => {
    const n = 100_000;
    // MARKs
    expect(decodeError(bytes("(".repeat(n), ".")).reason).toMatch(
      /nested deeper than maxDepth \(1000\)/,
    );
    // lists appended into lists on the stack
    expect(decodeError(bytes("]".repeat(n), "a".repeat(n - 1), ".")).opcode).toBe("APPEND");
    // a chain of 1-tuples, constant stack height
    expect(decodeError(bytes(")", "\x85".repeat(n), ".")).opcode).toBe("TUPLE1");
    // REDUCE chains and BUILD states
    const chain = bytes("cm\nf\n", "cm\nf\n)R\x85R".repeat(1500), ".");
    expect(decodeError(chain).reason).toMatch(/maxDepth/);
    // through the memo: li = []; l(i-1).append(li) -- constant stack, found when the value is complete
    const parts: (string | number[])[] = ["]q\x00"];
    for (let i = 1; i < 3000; i++)
      parts.push("]", [0x72, ...u32(i)], "0", [0x6a, ...u32(i - 1)], [0x6a, ...u32(i)], "a0");
    parts.push("h\x00.");
    const viaMemo = decodeError(bytes(...parts));
    expect([viaMemo.opcode, viaMemo.reason]).toEqual([
      "STOP",
      "the value is nested deeper than maxDepth (1000)",
    ]);
    // and a raised limit lets a trusted deep value through
    const deep = decode(bytes(")", "\x85".repeat(5000), "."), { maxDepth: 6000 });
    expect(isTuple(deep)).toBe(true);
  });

  it("rejects memo abuse: missing entries, and huge indices without allocating", () => {
    expect(decodeError(bytes("h\x05.")).reason).toBe("the memo has no entry 5");
    expect(decodeError(bytes("N", [0x6a], u32(0xffffffff), ".")).reason).toBe(
      "the memo has no entry 4294967295",
    );
    // a PUT at index 2^32 - 1 works and costs nothing
    expect(decode(bytes("K\x07", [0x72], u32(0xffffffff), "0", [0x6a], u32(0xffffffff), "."))).toBe(
      7,
    );
    expect(decodeError(bytes("p99999999999\n.")).reason).toMatch(/memo index/);
    // PUT with an empty stack
    expect(decodeError(bytes("q\x00.")).reason).toMatch(/stack underflow/);
  });

  it("rejects stack underflow and MARK misuse", () => {
    const cases: [string, string][] = [
      [".", "STOP"],
      ["a.", "APPEND"],
      ["]K\x01(a.", "APPEND"], // the list sits below the MARK
      ["t.", "TUPLE"],
      ["1.", "POP_MARK"],
      ["(e.", "APPENDS"], // nothing below the MARK to append to
      ["0.", "POP"],
      ["2.", "DUP"],
      ["\x85.", "TUPLE1"],
      ["N\x86.", "TUPLE2"],
      ["NR.", "REDUCE"],
      ["Nb.", "BUILD"],
      ["N(s.", "SETITEM"],
      ["N(.", "STOP"],
    ];
    for (const [input, opcode] of cases) {
      const e = decodeError(bytes(input));
      expect([input, e.opcode]).toEqual([input, opcode]);
      expect(e.reason).toMatch(/stack underflow|no MARK/);
    }
  });

  it("rejects ill-typed operations", () => {
    const cases: [Uint8Array, string][] = [
      [bytes("}(K\x01u."), "odd number of items"],
      [bytes("](K\x01K\x02u."), "cannot set items on a list"],
      [bytes(")K\x01a."), "cannot append to a tuple"],
      [bytes("]N\x85b."), "only objects built by a callable take state"],
      [bytes("cm\nf\n]R."), "arguments are a list, not a tuple"],
      [bytes("K\x01)R."), "which is not callable"],
      [bytes("K\x01)\x81."), "which is not callable"],
      [bytes("K\x01K\x02\x93."), "module and name must be str"],
      [bytes("(\x91(K\x01\x90."), "cannot add items to a set"],
      [bytes("cm\nf\n)RNbNb."), "state twice"],
      [bytes("cm\nf\n)]\x92."), "keyword arguments are not a dict"],
    ];
    for (const [input, reason] of cases) {
      const e = decodeError(input);
      expect(e.reason).toContain(reason);
    }
  });

  it("refuses what it does not support, saying why", () => {
    expect(decodeError(bytes([0x80, 6], "N.")).reason).toBe(
      "protocol 6 is newer than this codec reads (0 to 5)",
    );
    expect(decodeError(bytes([0x97], ".")).message).toContain("pickle without buffer_callback");
    expect(decodeError(bytes([0x82, 1], ".")).message).toContain("extension");
    expect(decodeError(bytes("Pid\n.")).message).toContain("persistent");
    expect(decodeError(bytes("Q.")).opcode).toBe("BINPERSID");
  });

  it("rejects malformed text and UTF-8", () => {
    expect(decodeError(bytes("X", u32(2), "\xff\xfe.")).reason).toBe("its text is not valid UTF-8");
    expect(decodeError(bytes("\x8c\x02\xc3(.")).reason).toBe("its text is not valid UTF-8");
    expect(decodeError(bytes("I12a\n.")).reason).toBe("its argument is not an integer");
    expect(decodeError(bytes("I12")).reason).toBe("its text argument has no terminating newline");
    expect(decodeError(bytes("L", "9".repeat(5000), "L\n.")).reason).toMatch(/4300/);
    expect(decodeError(bytes("Fabc\n.")).reason).toBe("its argument is not a float");
    expect(decodeError(bytes("S'abc\n.")).reason).toBe("its argument must be quoted");
    expect(decodeError(bytes("V\\u12\n.")).reason).toMatch(/escape/);
    expect(decodeError(bytes("cmodule-without-name")).opcode).toBe("GLOBAL");
  });

  it("handles what CPython's unpickler also accepts: trailing bytes, POP of a MARK, READONLY_BUFFER", () => {
    expect(decode(bytes("K\x01.garbage"))).toBe(1);
    expect(decode(bytes("K\x01(0."))).toBe(1);
    expect(decode(bytes([0x80, 5], "C\x01a", [0x98], "."))).toEqual(new Uint8Array([97]));
    expect(decode(bytes("(K\x01K\x02t."))).toEqual(tuple(1, 2));
  });
});
