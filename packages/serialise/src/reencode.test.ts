import { afterAll, describe, expect, it } from "vitest";
import { b64, PythonOracle, unb64 } from "./__fixtures__/python.js";
import { decode, encode, type PickleProtocol, type PyObject } from "./index.js";

const oracle = PythonOracle.start();
afterAll(() => oracle.close());

const WRITE: PickleProtocol[] = [2, 3, 4, 5];

/**
 * Pickles each expression with CPython at the given protocols, decodes each pickle, encodes it
 * again at every protocol, and returns where CPython loads the re-encoding to a value that is not
 * the twin of what it loads from the original (empty when all are).
 */
async function reencodingDifferences(
  cases: [expr: string, protocols: number[]][],
  write: PickleProtocol[] = WRITE,
) {
  const dumps = await oracle.batch(
    cases.map(([expr, protocols]) => ({ op: "dump", expr, protocols })),
  );
  const checks: Record<string, unknown>[] = [];
  dumps.forEach((reply, i) => {
    const [expr, protocols] = cases[i] as [string, number[]];
    if (reply.error !== undefined) throw new Error(`${expr}: ${reply.error}`);
    (reply.pickles as string[]).forEach((original, k) => {
      const value = decode(unb64(original));
      for (const protocol of write) {
        checks.push({
          op: "twin",
          original,
          pickle: b64(encode(value, { protocol })),
          label: `${expr} @${protocols[k]}->${protocol}`,
        });
      }
    });
  });
  const results = await oracle.batch(checks);
  return results
    .map((r, i) => (r.ok ? undefined : `${checks[i]?.label}: ${r.detail ?? r.error}`))
    .filter((x) => x !== undefined);
}

const ALL = [0, 1, 2, 3, 4, 5];

describe("re-encoding an object in a cycle through its own constructor arguments", () => {
  it("rebuilds the same cyclic set, frozenset, list and dict subclasses and Counter in CPython", async () => {
    const factories = [
      "fx.SetSub",
      "fx.FrozenSetSub",
      "fx.ListSub",
      "lambda items: fx.DictSub.fromkeys(items)",
      "lambda items: collections.Counter(items)",
      "set",
      "frozenset",
      "list",
      "dict.fromkeys",
    ];
    const cases: [string, number[]][] = factories.flatMap((factory) => [
      [`fx.collection_holding_itself(${factory})`, ALL] as [string, number[]],
      [`fx.holder_of_collection(${factory})`, ALL] as [string, number[]],
    ]);
    // CPython itself cannot write a list subclass holding itself before protocol 2.
    cases.push(["fx.self_list()", [2, 3, 4, 5]]);
    expect(await reencodingDifferences(cases)).toEqual([]);
  });

  it("constructs an object whose argument holds it from the argument as far as it is filled, as CPython did", async () => {
    // r = Reducer(s), s = {r}: CPython constructs r from s before adding r to s, and only from
    // protocol 4 (EMPTY_SET, then ADDITEMS); before, a set is constructed from its items.
    const cases: [string, number[]][] = [
      ["fx.reducer_in_its_argument()", [4, 5]],
      ["fx.reducer_in_its_argument().value", [4, 5]],
    ];
    expect(await reencodingDifferences(cases, [4, 5])).toEqual([]);
    const [reply] = await oracle.batch([
      { op: "dump", expr: "fx.reducer_in_its_argument()", protocols: [4] },
    ]);
    const value = decode(unb64(reply?.pickles[0]));
    for (const protocol of [2, 3] as const) {
      expect(() => encode(value, { protocol })).toThrow(
        /cycle through its own constructor arguments that Python cannot rebuild.*protocol 4 or later/,
      );
    }
  });
});

describe("re-encoding Python 2 classic instances (INST, OBJ)", () => {
  it("keeps CPython's rule: __init__ runs only with arguments or __getinitargs__", async () => {
    const text = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));
    const originals: Uint8Array[] = [];
    for (const cls of ["Classic", "ClassicInitArgs"]) {
      for (const args of ["", "I1\nVa\n"]) {
        // Protocol 0: INST names the class; protocol 1 (and 2, after PROTO): OBJ takes it from the stack.
        originals.push(text(`(${args}isheepdog_fixtures\n${cls}\np0\n(dp1\nVx\np2\nI7\nsb.`));
        const obj = `(csheepdog_fixtures\n${cls}\nq\x00${args}oq\x01}q\x02X\x01\x00\x00\x00xK\x07sb.`;
        originals.push(text(obj), text(`\x80\x02${obj}`));
      }
    }
    const checks = originals.flatMap((original) => {
      const value = decode(original);
      expect((value as PyObject).kind).toBe("obj");
      return WRITE.map((protocol) => ({
        op: "twin",
        original: b64(original),
        pickle: b64(encode(value, { protocol })),
      }));
    });
    const results = await oracle.batch(checks);
    expect(results.map((r) => r.detail ?? r.error ?? null)).toEqual(checks.map(() => null));
  });
});
