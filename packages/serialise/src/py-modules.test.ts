import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { PYTHON } from "./__fixtures__/python.js";
import type { ShippedFunction } from "./index.js";
import { functionSource, functionSourceChecking, py, pyFile } from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "sheepdog-py-modules-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(path: string, lines: string[]): string {
  const file = join(dir, path);
  mkdirSync(join(file, ".."), { recursive: true });
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

/**
 * Runs the function as the worker would run a pyFile shipped with its modules: in a fresh
 * directory that holds nothing but what shipped, so only shipped modules can be imported.
 */
function runShipped(fn: ShippedFunction, args: unknown[]): unknown {
  const home = mkdtempSync(join(tmpdir(), "sheepdog-shipped-"));
  try {
    for (const [path, text] of Object.entries(fn.modules ?? {})) {
      mkdirSync(join(home, path, ".."), { recursive: true });
      writeFileSync(join(home, path), text);
    }
    const script = [
      "import json, sys",
      "sys.path.insert(0, '.')",
      "fn, args = json.load(sys.stdin)",
      "ns = {'__name__': '__sheepdog__'}",
      "exec(compile(fn['source'], '<f>', 'exec'), ns)",
      "json.dump(ns[fn['name']](*args), sys.stdout)",
    ].join("\n");
    const out = execFileSync(PYTHON, ["-I", "-c", script], {
      cwd: home,
      input: JSON.stringify([fn, args]),
      encoding: "utf8",
    });
    return JSON.parse(out);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

describe("pyFile ships the local modules it imports", () => {
  write("project/helpers.py", ["import utils", "def half(x):", "    return utils.scale(x) / 2"]);
  write("project/utils.py", ["import math", "def scale(x):", "    return math.floor(x) * 2"]);
  write("project/lib/__init__.py", ["from .core import twice"]);
  write("project/lib/core.py", ["def twice(x):", "    return 2 * x"]);
  write("project/plugin_a.py", ["NAME = 'a'"]);
  write("project/unused.py", ["raise SystemExit('never shipped')"]);
  const model = write("project/model.py", [
    "import json, math",
    "import helpers",
    "try:",
    "    from lib import twice",
    "except ImportError:",
    "    twice = None",
    "def fit(x):",
    "    import importlib",
    "    plugin = importlib.import_module('plugin_a')",
    "    return [helpers.half(x), twice(x), plugin.NAME]",
  ]);

  it("finds imports of imports and whole packages, and leaves the rest", () => {
    const fit = pyFile(model, "fit", { modules: ["plugin_a"] });
    expect(Object.keys(fit.modules ?? {}).sort()).toEqual([
      "helpers.py",
      "lib/__init__.py",
      "lib/core.py",
      "plugin_a.py",
      "utils.py",
    ]);
    const shipped = functionSource(fit);
    expect(shipped.modules?.["helpers.py"]).toContain("def half(x):");
    expect(runShipped(shipped, [5])).toEqual([5, 10, "a"]);
  });

  it("ships nothing more for a file without local imports, as before", () => {
    const alone = write("alone/solo.py", ["import os", "def f():", "    return os.sep"]);
    const f = pyFile(alone, "f");
    expect(f.modules).toBeUndefined();
    expect(functionSource(f)).toEqual({ name: "f", source: f.source });
  });

  it("refuses a module named in options that is not beside the file", () => {
    expect(() => pyFile(model, "fit", { modules: ["nowhere"] })).toThrow(
      /The module "nowhere" named in modules is not in .*project \(no nowhere\.py, no nowhere\/\)/,
    );
    expect(() => pyFile(model, "fit", { modules: ["../x"] })).toThrow(
      'modules lists Python module names, like "helpers" or "lib.util", not "../x".',
    );
  });
});

describe("the syntax check before anything is submitted", { timeout: 30_000 }, () => {
  const saved = process.env.SHEEPDOG_CHECK_PYTHON;
  afterEach(() => {
    if (saved === undefined) delete process.env.SHEEPDOG_CHECK_PYTHON;
    else process.env.SHEEPDOG_CHECK_PYTHON = saved;
  });

  it("names the file, the line and Python's message", () => {
    const broken = write("syntax/broken.py", [
      "def f(x):",
      "    return x",
      "",
      "def g(:",
      "    pass",
    ]);
    const f = pyFile(broken, "f");
    const error = (() => {
      try {
        functionSource(f);
      } catch (caught) {
        return caught as Error & { code: string };
      }
      throw new Error("no error");
    })();
    expect(error.code).toBe("INVALID_INPUT");
    expect(error.message).toMatch(
      new RegExp(
        `^\\[sheepdog\\] \\[serialise\\] ${broken.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} has a Python syntax error at line 4: invalid syntax\\. Fix it and run again \\(checked by the local python3, Python 3\\.\\d+\\.\\d+, before anything was submitted; if the cluster's Python accepts what this one does not, set SHEEPDOG_CHECK_PYTHON=off\\)\\.$`,
      ),
    );
  });

  it("checks in the background with functionSourceChecking, rejecting as functionSource throws", async () => {
    const broken = write("syntax3/broken.py", ["def f(x):", "    return [x for x in]"]);
    const f = pyFile(broken, "f");
    const { source, checked } = functionSourceChecking(f);
    expect(source).toMatchObject({ name: "f" });
    const error = await checked.catch((caught: unknown) => caught as Error & { code: string });
    expect(error).toMatchObject({ code: "INVALID_INPUT" });
    expect((error as Error).message).toContain(`${broken} has a Python syntax error at line 2`);
    const good = py`
def g(x):
    return x
`;
    await expect(functionSourceChecking(good).checked).resolves.toBeUndefined();
  });

  it("checks the shipped modules and py`...` too", () => {
    write("syntax2/helper.py", ["def h(:", "    pass"]);
    const main = write("syntax2/main.py", ["import helper", "def f():", "    return 1"]);
    expect(() => functionSource(pyFile(main, "f"))).toThrow(
      /syntax2\/helper\.py has a Python syntax error at line 1/,
    );
    const inline = py`
      def f(x):
          return [x for x in]
    `;
    expect(() => functionSource(inline)).toThrow(
      /py`\.\.\.` \(function f\) has a Python syntax error at line 3: invalid syntax/,
    );
  });

  it("never fails without a local Python, or when turned off", () => {
    const inline = py`
      def f(x:
          pass
    `;
    process.env.SHEEPDOG_CHECK_PYTHON = "/no/such/python3";
    expect(functionSource(inline).name).toBe("f");
    const again = py`
      def f(x:
          pass
    `;
    process.env.SHEEPDOG_CHECK_PYTHON = "off";
    expect(functionSource(again).name).toBe("f");
  });
});
