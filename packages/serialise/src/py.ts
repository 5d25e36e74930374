import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { FunctionSource } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import { localModules } from "./internal/local-modules.js";
import { scanTopLevel, type TopLevel } from "./internal/python-source.js";
import { source } from "./internal/source.js";
import type { SourceUnit } from "./internal/syntax-check.js";
import { checkSyntax, checkSyntaxInBackground } from "./internal/syntax-check.js";
import { kindMarker } from "./values.js";

/**
 * Where {@link PyFunction} keeps its type parameters. Types only: no value of this name exists at
 * run time.
 */
declare const pyTypes: unique symbol;

/**
 * The argument tuple of a function declared without types: any array. It is `any` rather than
 * `unknown` for the reason `(...args: any[]) => unknown` is TypeScript's "any function": a
 * function's arguments are checked contravariantly, so only this lets every typed
 * {@link PyFunction} be used where an untyped one is expected.
 */
// biome-ignore lint/suspicious/noExplicitAny: the one place it is needed; see above.
export type UntypedArgs = any[];

/**
 * A Python function to run on the workers, as source: the module `source` is executed in a fresh
 * namespace and its global `name` is called. Made by {@link py} or {@link pyFile}; never pickled
 * (it travels as a {@link FunctionSource}).
 *
 * `Args` (the argument tuple of one call) and `R` (what one call returns, as `decode` gives it
 * back) are for the type checker only: TypeScript cannot read them from Python source, so they
 * are what the caller declares, unchecked at run time. A call that takes a function and its
 * arguments, such as `map(f, args)`, infers `Args` from `f` and checks `args` against it.
 * Without them a function takes any argument tuple and returns `unknown`; a typed function can
 * be used wherever an untyped one is expected.
 *
 * @typeParam Args - the argument tuple of one call, e.g. `[number, number]`.
 * @typeParam R - the decoded result of one call.
 */
export class PyFunction<Args extends readonly unknown[] = UntypedArgs, R = unknown>
  implements FunctionSource
{
  declare readonly [kindMarker]: "function";
  /**
   * Types only, never set: the call this function stands for. A function type (not a method),
   * so that `Args` is inferred from the function before the arguments are checked against it.
   */
  declare readonly [pyTypes]?: (...args: Args) => R;
  /** The top-level name to call. */
  readonly name: string;
  /** The Python module source. */
  readonly source: string;
  /** The absolute path of the file, for {@link pyFile}. */
  readonly path: string | undefined;
  /**
   * The local modules that ship with a {@link pyFile} function, by their path relative to its
   * file's directory (`helpers.py`, `lib/__init__.py`): the worker makes them importable.
   */
  readonly modules: Readonly<Record<string, string>> | undefined;

  constructor(
    name: string,
    source: string,
    path?: string,
    modules?: Readonly<Record<string, string>>,
  ) {
    this.name = name;
    this.source = source;
    this.path = path;
    this.modules =
      modules !== undefined && Object.keys(modules).length > 0
        ? Object.freeze({ ...modules })
        : undefined;
    Object.freeze(this);
  }

  /** `{ name, source, modules? }`, the shape stored as a request's function. */
  toJSON(): ShippedFunction {
    return {
      name: this.name,
      source: this.source,
      ...(this.modules !== undefined && { modules: { ...this.modules } }),
    };
  }

  /** True for any PyFunction, even one made by another copy of this package. */
  static isInstance(value: unknown): value is PyFunction {
    return (
      typeof value === "object" &&
      value !== null &&
      (value as Record<symbol, unknown>)[kindMarker] === "function"
    );
  }
}
Object.defineProperty(PyFunction.prototype, kindMarker, { value: "function" });

/** True for a `py` / `pyFile` function value. */
export function isPyFunction(value: unknown): value is PyFunction {
  return PyFunction.isInstance(value);
}

/**
 * A {@link FunctionSource} as a request stores it, with the local modules of a {@link pyFile}
 * (`modules`, by path relative to the file's directory), which the worker makes importable.
 */
export interface ShippedFunction extends FunctionSource {
  modules?: Record<string, string>;
}

/** The functions whose syntax a local Python found fine (each is checked once). */
const syntaxChecked = new WeakSet<object>();

/**
 * The `{ name, source, modules? }` of a py function, as the store and the worker take it. The
 * first time for each function, a local `python3` (when there is one) parses its source and its
 * modules, so that a syntax error is reported here, before anything is submitted.
 *
 * @throws SheepdogError `INVALID_INPUT` naming the file, line and message of a syntax error.
 */
export function functionSource(fn: PyFunction): ShippedFunction {
  checkIsPyFunction(fn, "functionSource");
  if (!syntaxChecked.has(fn)) {
    checkSyntax(sourceUnits(fn));
    syntaxChecked.add(fn);
  }
  return fn.toJSON();
}

/**
 * As {@link functionSource}, with the syntax check (the first time for each function) left
 * running in a local Python of its own: `checked` settles when it is done, rejecting as
 * `functionSource` throws. A caller that connects to its cluster meanwhile waits for the check
 * only before it stores or submits anything.
 */
export function functionSourceChecking(fn: PyFunction): {
  source: ShippedFunction;
  checked: Promise<void>;
} {
  checkIsPyFunction(fn, "functionSourceChecking");
  const checked = syntaxChecked.has(fn)
    ? Promise.resolve()
    : checkSyntaxInBackground(sourceUnits(fn)).then(() => {
        syntaxChecked.add(fn);
      });
  return { source: fn.toJSON(), checked };
}

function checkIsPyFunction(fn: unknown, caller: string): asserts fn is PyFunction {
  if (!PyFunction.isInstance(fn)) {
    throw new SheepdogError(
      "PYTHON_SOURCE",
      source,
      `${caller} takes a py\`...\` or pyFile(...) value.`,
    );
  }
}

/** A function's source and its local modules, as the syntax check names them. */
function sourceUnits(fn: PyFunction): SourceUnit[] {
  const where = fn.path ?? `py\`...\` (function ${fn.name})`;
  const folder = fn.path === undefined ? "" : dirname(fn.path);
  return [
    { where, source: fn.source },
    ...Object.entries(fn.modules ?? {}).map(([path, text]) => ({
      where: join(folder, path),
      source: text,
    })),
  ];
}

function sourceError(message: string, cause?: unknown): SheepdogError {
  return new SheepdogError("PYTHON_SOURCE", source, message, { cause });
}

const IDENTIFIER = /^[\p{L}\p{Nl}_][\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}]*$/u;

/** textwrap.dedent: removes the whitespace every non-blank line starts with. */
function dedent(text: string): string {
  const lines = text.split("\n");
  let margin: string | undefined;
  for (const line of lines) {
    if (line.trim() === "") continue;
    const indent = /^[ \t]*/.exec(line)?.[0] ?? "";
    if (margin === undefined || !indent.startsWith(margin)) {
      let k = 0;
      const m = margin ?? indent;
      while (k < m.length && k < indent.length && m[k] === indent[k]) k++;
      margin = margin === undefined ? indent : m.slice(0, k);
    }
  }
  if (!margin) return text;
  const cut = margin.length;
  return lines
    .map((line) => (line.trim() === "" ? line.replace(/^[ \t]+/, "") : line.slice(cut)))
    .join("\n");
}

function listNames(names: readonly string[]): string {
  return names.length === 0 ? "nothing" : names.join(", ");
}

/** Picks the function to call from the module's top level, or explains why it cannot. */
function chooseName(
  top: TopLevel,
  explicit: string | undefined,
  where: string,
  asking: string,
): string {
  if (explicit !== undefined) {
    if (!IDENTIFIER.test(explicit)) {
      throw sourceError(`"${explicit}" is not a Python identifier. Name the function to call.`);
    }
    if (!top.defs.includes(explicit) && !top.names.has(explicit)) {
      throw sourceError(
        `${where} has no top-level function "${explicit}"; its top-level functions are: ${listNames(top.defs)}. Check the name (case matters).`,
      );
    }
    return explicit;
  }
  if (top.defs.length === 0) {
    throw sourceError(
      `${where} has no top-level def. Write the function as "def name(...):" at the start of a line.`,
    );
  }
  const unique = [...new Set(top.defs)];
  if (unique.length > 1) {
    throw sourceError(
      `${where} defines several top-level functions (${listNames(unique)}). ${asking}`,
    );
  }
  return unique[0] as string;
}

function render(strings: TemplateStringsArray, values: unknown[]): string {
  let out = "";
  strings.raw.forEach((raw, i) => {
    // Raw text keeps Python's backslash escapes; only the JavaScript escapes of ` and ${ go.
    out += raw.replace(/\\(`|\$\{)/g, "$1");
    if (i < values.length) {
      const v = values[i];
      if (typeof v !== "string" && typeof v !== "number") {
        throw sourceError(
          "py`...` interpolates only strings and numbers into the source. Pass data as arguments or in the namespace instead.",
        );
      }
      out += String(v);
    }
  });
  return out;
}

function fromTemplate<Args extends readonly unknown[], R>(
  strings: TemplateStringsArray,
  values: unknown[],
  name: string | undefined,
): PyFunction<Args, R> {
  if (!Array.isArray(strings) || !Array.isArray((strings as { raw?: unknown }).raw)) {
    throw sourceError('py is a template tag: write py`def f(x): ...` (or py.named("f")`...`).');
  }
  const source = dedent(render(strings, values));
  const top = scanTopLevel(source);
  const chosen = chooseName(
    top,
    name,
    "py`...`",
    `Name the one to call: py.named("${top.defs[0] ?? "f"}")\`...\`.`,
  );
  return new PyFunction<Args, R>(chosen, source);
}

/**
 * A template tag made by `py.named(name)`: it takes the same type parameters as {@link PyTag},
 * defaulting to those given to `named`.
 */
export type PyNamedTag<Args extends readonly unknown[] = UntypedArgs, R = unknown> = <
  A extends readonly unknown[] = Args,
  S = R,
>(
  strings: TemplateStringsArray,
  ...values: (string | number)[]
) => PyFunction<A, S>;

/** The `py` template tag: see {@link py}. */
export interface PyTag {
  <Args extends readonly unknown[] = UntypedArgs, R = unknown>(
    strings: TemplateStringsArray,
    ...values: (string | number)[]
  ): PyFunction<Args, R>;
  /** A tag that calls the top-level function `name` (needed when the source defines several). */
  named<Args extends readonly unknown[] = UntypedArgs, R = unknown>(
    name: string,
  ): PyNamedTag<Args, R>;
}

/**
 * A Python function written inline. The source is taken raw (as `String.raw`: Python's escapes
 * such as `"\n"` stay as written), dedented, and must define exactly one top-level `def`, which is
 * the function called; with several, name one with `py.named("f")`. Helpers, imports and
 * classes may sit beside it. Interpolated strings and numbers are pasted in verbatim.
 *
 * Type parameters, optional, declare the argument tuple and the result for the type checker
 * (see {@link PyFunction}): `` py<[number, number], number>`...` `` or
 * `` py.named<[number], number>("main")`...` ``.
 *
 * @throws SheepdogError `PYTHON_SOURCE` when there is no top-level def, or several and no name.
 *
 * @example
 * ```ts
 * const add = py`
 *   def add(a, b):
 *       return a + b
 * `;
 * const pick = py.named("main")`
 *   def helper(x): return x * 2
 *   def main(x): return helper(x)
 * `;
 * const typed = py<[a: number, b: number], number>`
 *   def add(a, b):
 *       return a + b
 * `;
 * ```
 */
export const py: PyTag = Object.assign(
  <Args extends readonly unknown[] = UntypedArgs, R = unknown>(
    strings: TemplateStringsArray,
    ...values: (string | number)[]
  ) => fromTemplate<Args, R>(strings, values, undefined),
  {
    named<Args extends readonly unknown[] = UntypedArgs, R = unknown>(
      name: string,
    ): PyNamedTag<Args, R> {
      if (typeof name !== "string" || !IDENTIFIER.test(name)) {
        throw sourceError(`py.named takes a Python identifier, not ${JSON.stringify(name)}.`);
      }
      return <A extends readonly unknown[] = Args, S = R>(
        strings: TemplateStringsArray,
        ...values: (string | number)[]
      ) => fromTemplate<A, S>(strings, values, name);
    },
  },
);

/** Options of {@link pyFile}. */
export interface PyFileOptions {
  /**
   * Local modules to ship besides those found (module names such as `"helpers"` or
   * `"lib.util"`, looked up in the file's directory; a package ships whole): for an import the
   * scan cannot see, such as `importlib.import_module(name)`. @default []
   */
  modules?: readonly string[];
}

/**
 * A Python function from a file: the whole module ships to the workers (so its imports, helpers
 * and constants work) and its top-level `name` is called. The local modules it imports (a
 * `helpers.py` or a package `lib/` in the same directory, and what those import in turn) ship
 * with it, and the workers import them as Python would from the file's directory; name others
 * in `options.modules`. The file is read now, synchronously;
 * a relative path resolves against the current directory (pass
 * `new URL("./model.py", import.meta.url)` for one beside your module). Type parameters declare
 * the argument tuple and the result, as for {@link py}.
 *
 * @throws SheepdogError `PYTHON_SOURCE` when the file cannot be read or does not define `name`.
 *
 * @example
 * ```ts
 * const fit = pyFile("./model.py", "fit"); // model.py may `import helpers` (./helpers.py)
 * const typedFit = pyFile<[rows: number[][]], { score: number }>("./model.py", "fit");
 * const loaded = pyFile("./plugins.py", "run", { modules: ["plugin_a"] });
 * ```
 */
export function pyFile<Args extends readonly unknown[] = UntypedArgs, R = unknown>(
  path: string | URL,
  name: string,
  options: PyFileOptions = {},
): PyFunction<Args, R> {
  const file = path instanceof URL ? fileURLToPath(path) : resolve(String(path));
  if (typeof name !== "string" || name === "") {
    throw sourceError(`pyFile("${file}", name) needs the name of the function to call.`);
  }
  let source: string;
  try {
    source = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "ENOENT") {
      throw sourceError(
        `Python file not found: ${file}. Check the path; a relative path resolves against the current directory (${process.cwd()}).`,
        error,
      );
    }
    throw sourceError(`Cannot read the Python file ${file}: ${(error as Error).message}.`, error);
  }
  if (source.charCodeAt(0) === 0xfeff) source = source.slice(1);
  const chosen = chooseName(scanTopLevel(source), name, file, "");
  const modules = localModules(file, dirname(file), source, options.modules ?? []);
  return new PyFunction<Args, R>(chosen, source, file, modules);
}
