import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { FunctionSource } from "@sheepdog/contracts";
import { afterAll, describe, expect, expectTypeOf, it } from "vitest";
import { PYTHON } from "./__fixtures__/python.js";
import type { UntypedArgs } from "./index.js";
import { functionSource, isPyFunction, PyFunction, py, pyFile } from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "sheepdog-py-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs each function as the worker will: exec the source in a fresh namespace, call the name. */
function runInPython(calls: [FunctionSource, unknown[]][]): unknown[] {
  const script = `
import json, sys
out = []
for fn, args in json.load(sys.stdin):
    ns = {"__name__": "__sheepdog__"}
    exec(compile(fn["source"], "<sheepdog>", "exec"), ns)
    out.append(ns[fn["name"]](*args))
json.dump(out, sys.stdout)`;
  return JSON.parse(
    execFileSync(PYTHON, ["-c", script], { input: JSON.stringify(calls), encoding: "utf8" }),
  ) as unknown[];
}

function sourceError(fn: () => unknown): Error & { code: string } {
  try {
    fn();
  } catch (error) {
    expect((error as { code?: string }).code).toBe("PYTHON_SOURCE");
    return error as Error & { code: string };
  }
  throw new Error("did not throw");
}

describe("py", () => {
  it("holds the source and the name of its one top-level def", () => {
    const add = py`
      def add(a, b):
          return a + b
    `;
    expect(isPyFunction(add)).toBe(true);
    expect(PyFunction.isInstance({ name: "add", source: "" })).toBe(false);
    expect(add.name).toBe("add");
    expect(add.source).toBe("\ndef add(a, b):\n    return a + b\n");
    expect(functionSource(add)).toEqual({ name: "add", source: add.source });
    expect(JSON.parse(JSON.stringify(add))).toEqual({ name: "add", source: add.source });
    expect(Object.isFrozen(add)).toBe(true);
  });

  it("keeps Python's escapes, helpers, decorators and nested defs, and the result runs", () => {
    const fns = [
      py.named("main")`
        import functools

        def helper(x):
            return x * 2

        @functools.lru_cache(maxsize=None)
        def main(x):
            """A docstring: def fake(y): is not a def."""
            def inner(z):
                return z + 1
            return helper(inner(x)), "a\nb", '\t'
      `,
      py`def one(): return 1`,
    ];
    const named = py.named("main")`
      def helper(x):
          return -x
      def main(x):
          return helper(x)
    `;
    expect(
      () => py`
      def helper(x): pass
      def main(x): pass
    `,
    ).toThrow(/several top-level functions \(helper, main\)/);
    expect(fns[0]?.name).toBe("main");
    expect(fns[0]?.source).toContain('"a\\nb"');
    expect(fns[1]?.name).toBe("one");
    expect(named.name).toBe("main");
    expect(
      runInPython([
        [functionSource(fns[0] as PyFunction), [3]],
        [functionSource(fns[1] as PyFunction), []],
        [functionSource(named), [5]],
      ]),
    ).toEqual([[8, "a\nb", "\t"], 1, -5]);
  });

  it("ignores defs in strings, comments, brackets and indented blocks", () => {
    // Not indented: a line at column 0 inside a string would stop dedenting (as textwrap.dedent).
    const f = py`
TEXT = """
def not_this(): pass
"""
# def nor_this(): pass
CALLS = [
"def nor_that(x):",
]
X = 'it''s' \
    "def also_not(): pass"
if True:
    def hidden(): pass
class K:
    def method(self): pass
async def the_one(x):
    return x
`;
    expect(f.name).toBe("the_one");
  });

  it("interpolates strings and numbers, and refuses other values", () => {
    const n = 3;
    expect(py`def f(): return ${n} + ${"4"}`.source).toBe("def f(): return 3 + 4");
    expect(py`def f(): return "\`"`.source).toBe('def f(): return "`"');
    expect(sourceError(() => py`def f(): return ${{} as string}`).message).toContain(
      "interpolates only strings and numbers",
    );
  });

  it("explains a missing def, several defs, and a wrong name", () => {
    expect(sourceError(() => py`x = 1`).message).toBe(
      '[sheepdog] [serialise] py`...` has no top-level def. Write the function as "def name(...):" at the start of a line.',
    );
    expect(
      sourceError(
        () => py`def f(): pass
def g(): pass`,
      ).message,
    ).toBe(
      '[sheepdog] [serialise] py`...` defines several top-level functions (f, g). Name the one to call: py.named("f")`...`.',
    );
    expect(sourceError(() => py.named("h")`def f(): pass`).message).toContain(
      'has no top-level function "h"; its top-level functions are: f.',
    );
    expect(sourceError(() => py.named("2x")).message).toContain("Python identifier");
    expect(
      sourceError(() => (py as unknown as (s: string) => unknown)("def f(): pass")).message,
    ).toContain("template tag");
  });
});

describe("pyFile", () => {
  const module = join(dir, "model.py");
  writeFileSync(
    module,
    [
      "import math",
      "from os import path as p",
      "SCALE = 2",
      "def helper(x):",
      "    return math.sqrt(x) * SCALE",
      "def fit(x):",
      "    return helper(x)",
      "class Model:",
      "    def __call__(self, x): return x",
      "square = lambda x: x * x",
      "",
    ].join("\n"),
  );

  it("ships the whole module and names the function", () => {
    const fit = pyFile(module, "fit");
    expect(fit.name).toBe("fit");
    expect(fit.path).toBe(module);
    expect(fit.source).toContain("import math");
    expect(runInPython([[functionSource(fit), [16]]])).toEqual([8]);
    expect(pyFile(pathToFileURL(module), "helper").name).toBe("helper");
    expect(pyFile(module, "Model").name).toBe("Model");
    expect(runInPython([[functionSource(pyFile(module, "square")), [7]]])).toEqual([49]);
  });

  it("explains a missing file, a missing function and an unreadable path", () => {
    expect(sourceError(() => pyFile(join(dir, "nope.py"), "f")).message).toMatch(
      /Python file not found: .*nope\.py\. Check the path; a relative path resolves against the current directory/,
    );
    expect(sourceError(() => pyFile(module, "predict")).message).toContain(
      'has no top-level function "predict"; its top-level functions are: helper, fit.',
    );
    const sub = join(dir, "a-directory.py");
    mkdirSync(sub);
    expect(sourceError(() => pyFile(sub, "f")).message).toContain("Cannot read the Python file");
    expect(sourceError(() => pyFile(module, "")).message).toContain("needs the name");
  });
});

/** The shape of core's `map` that the type parameters serve. */
type MapLike = <Args extends readonly unknown[], R>(
  f: PyFunction<Args, R>,
  args: Iterable<Args>,
) => Promise<(R | null)[]>;

// The @ts-expect-error lines below are checked by `pnpm typecheck`: each must be a type error.
describe("type parameters", () => {
  const map: MapLike = async () => [];
  const add = py<[number, number], number>`
    def add(a, b):
        return a + b
  `;

  it("are types only: a typed function is the same value as an untyped one", () => {
    const untyped = py`
    def add(a, b):
        return a + b
  `;
    expect(add).toEqual(untyped);
    expect(Reflect.ownKeys(add)).toEqual(Reflect.ownKeys(untyped));
    expect(functionSource(add)).toEqual(functionSource(untyped));
  });

  it("check argument tuples and results where a call takes f and its arguments", async () => {
    expectTypeOf(add).toEqualTypeOf<PyFunction<[number, number], number>>();
    expectTypeOf(map(add, [[1, 2]])).toEqualTypeOf<Promise<(number | null)[]>>();
    // @ts-expect-error a str where the function takes a number
    await map(add, [["1", 2]]);
    // @ts-expect-error an argument short
    await map(add, [[1]]);
    // @ts-expect-error the results are numbers, not strings
    const results: (string | null)[] = await map(add, [[1, 2]]);
    expect(results).toEqual([]);
  });

  it("default to any argument tuple and an unknown result; a typed function is an untyped one", () => {
    const untyped = py`
      def f(*args):
          return args
    `;
    expectTypeOf(untyped).toEqualTypeOf<PyFunction<UntypedArgs, unknown>>();
    expectTypeOf(map(untyped, [[1, "a"], []])).toEqualTypeOf<Promise<unknown[]>>();
    expectTypeOf(add).toExtend<PyFunction>();
    expectTypeOf<PyFunction>().not.toExtend<PyFunction<[number, number], number>>();
    expectTypeOf(add).not.toExtend<PyFunction<[string, string], number>>();
    expectTypeOf(add).not.toExtend<PyFunction<[number, number], string>>();
    expect(functionSource(add).name).toBe("add");
  });

  it("are taken by py.named (before or after the name), pyFile and a declared type", async () => {
    const named = py.named<[string], string>("main")`
      def main(x): return x
      def other(): pass
    `;
    const after = py.named("main")<[string], string>`
      def main(x): return x
      def other(): pass
    `;
    expectTypeOf(named).toEqualTypeOf<PyFunction<[string], string>>();
    expectTypeOf(after).toEqualTypeOf<PyFunction<[string], string>>();
    // @ts-expect-error a number where main takes a str
    await map(named, [[1]]);
    const file = join(dir, "typed.py");
    writeFileSync(file, "def fit(rows):\n    return len(rows)\n");
    const fit = pyFile<[rows: number[][]], number>(file, "fit");
    expectTypeOf(fit).toEqualTypeOf<PyFunction<[rows: number[][]], number>>();
    const declared: PyFunction<[number], boolean> = py`
      def odd(n): return n % 2 == 1
    `;
    expectTypeOf(declared).toEqualTypeOf<PyFunction<[number], boolean>>();
    expect([named.name, after.name, fit.name, declared.name]).toEqual([
      "main",
      "main",
      "fit",
      "odd",
    ]);
  });
});
