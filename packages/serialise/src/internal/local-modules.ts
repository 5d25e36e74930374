import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { SheepdogError } from "@sheepdog/contracts";
import { source as packageName } from "./source.js";

/** The most bytes of local modules that ship with one file. */
export const MAX_LOCAL_MODULE_BYTES = 16 * 1024 * 1024;
/** The most local module files that ship with one file. */
export const MAX_LOCAL_MODULE_FILES = 1000;

const IMPORT_LINE = /^[ \t]*import[ \t]+([^#\n;]+)/gm;
const FROM_LINE = /^[ \t]*from[ \t]+([A-Za-z_][\w.]*)[ \t]+import\b/gm;
const MODULE_NAME = /^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$/;

/**
 * The top-level names of the modules that `source` imports absolutely (`import a.b`,
 * `import a as x, c`, `from a.b import c`), wherever the statement stands (in a function, under
 * `try`). A light scan: a match inside a string only costs a look for a file of that name.
 */
export function importedNames(source: string): Set<string> {
  const names = new Set<string>();
  for (const match of source.matchAll(IMPORT_LINE)) {
    for (const part of (match[1] ?? "").split(",")) {
      const name = part.trim().split(/[ \t]+/)[0] ?? "";
      if (MODULE_NAME.test(name)) names.add(name.split(".")[0] as string);
    }
  }
  for (const match of source.matchAll(FROM_LINE)) {
    names.add((match[1] as string).split(".")[0] as string);
  }
  return names;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The `.py` files of a package directory and its subdirectories (not hidden, no caches). */
function packageFiles(directory: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    if (entry.name.startsWith(".") || entry.name === "__pycache__") continue;
    const path = join(directory, entry.name);
    if (entry.isDirectory() && /^[A-Za-z_]\w*$/.test(entry.name)) files.push(...packageFiles(path));
    else if (entry.isFile() && /^[A-Za-z_]\w*\.py$/.test(entry.name)) files.push(path);
  }
  return files;
}

/**
 * The files of the local module `name` (a top-level module or package) in `directory`, as
 * Python finds it there: `<name>.py`, or the `.py` files of the package `<name>/`. Empty when
 * `directory` holds no such module (it is then a module of the Python on the nodes).
 */
function moduleFiles(directory: string, name: string): string[] {
  const file = join(directory, `${name}.py`);
  if (isFile(file)) return [file];
  const folder = join(directory, name);
  return isDirectory(folder) ? packageFiles(folder) : [];
}

function tooMuch(file: string, what: string): SheepdogError {
  return new SheepdogError(
    "PYTHON_SOURCE",
    packageName,
    `The local modules that ${file} imports come to more than ${what}. Ship large data another way (a file on the cluster), or install big packages in the nodes' Python.`,
  );
}

/**
 * The local modules that the Python file `file` (whose text is `source`) needs on the nodes:
 * each module or package in the file's directory that it imports, the ones those import in
 * turn, and the modules named in `extra` (module names, `"helpers"` or `"lib.util"`, whose
 * top-level module or package ships whole). Keyed by their path relative to that directory,
 * with `/` separators (`helpers.py`, `lib/__init__.py`), as the worker installs them.
 *
 * @throws SheepdogError `PYTHON_SOURCE` for a module in `extra` that is not there, or when the
 * modules pass {@link MAX_LOCAL_MODULE_FILES} or {@link MAX_LOCAL_MODULE_BYTES}.
 */
export function localModules(
  file: string,
  directory: string,
  source: string,
  extra: readonly string[] = [],
): Record<string, string> {
  const modules: Record<string, string> = {};
  let bytes = 0;
  let count = 0;
  const seen = new Set<string>();
  const pending: string[] = [];
  const want = (names: Iterable<string>) => {
    for (const name of names) if (!seen.has(name)) pending.push(name);
  };
  for (const name of extra) {
    if (typeof name !== "string" || !MODULE_NAME.test(name)) {
      throw new SheepdogError(
        "PYTHON_SOURCE",
        packageName,
        `modules lists Python module names, like "helpers" or "lib.util", not ${JSON.stringify(name)}.`,
      );
    }
    const top = name.split(".")[0] as string;
    if (moduleFiles(directory, top).length === 0) {
      throw new SheepdogError(
        "PYTHON_SOURCE",
        packageName,
        `The module "${name}" named in modules is not in ${directory} (no ${top}.py, no ${top}/). Name modules that sit beside ${file}.`,
      );
    }
    want([top]);
  }
  want(importedNames(source));
  while (pending.length > 0) {
    const name = pending.pop() as string;
    if (seen.has(name)) continue;
    seen.add(name);
    for (const path of moduleFiles(directory, name)) {
      if (path === file) continue;
      const text = readFileSync(path, "utf8").replace(/^\uFEFF/, "");
      count += 1;
      bytes += Buffer.byteLength(text);
      if (count > MAX_LOCAL_MODULE_FILES) throw tooMuch(file, `${MAX_LOCAL_MODULE_FILES} files`);
      if (bytes > MAX_LOCAL_MODULE_BYTES) throw tooMuch(file, `${MAX_LOCAL_MODULE_BYTES} bytes`);
      modules[relative(directory, path).split(sep).join("/")] = text;
      want(importedNames(text));
    }
  }
  return modules;
}
