import { PyGlobal, PyObject } from "../values.js";

/** A short description of a value's type for error messages (never its contents). */
export function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (typeof v !== "object") return `a ${typeof v}`;
  const name = (v as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === "string" && name !== "" ? `a ${name}` : "an object";
}

const identifier = /^[A-Za-z_$][\w$]*$/;

/**
 * The path from `root` to `target` (`value[2].name`, `value.get("k")`): the first place `encode`
 * meets it, found depth-first in the encoder's order without revisiting objects; `value` when
 * `target` is the root or cannot be found. Only used to explain an error.
 */
export function findPath(root: unknown, target: unknown): string {
  if (root === target) return "value";
  const seen = new Set<unknown>();
  const stack: [unknown, string][] = [[root, "value"]];
  while (stack.length > 0) {
    const [node, path] = stack.pop() as [unknown, string];
    if (node === target) return path;
    if (typeof node !== "object" || node === null || seen.has(node)) continue;
    seen.add(node);
    let kids: [unknown, string][];
    try {
      kids = children(node);
    } catch {
      continue; // a malformed value (the reason encode failed): no path through it
    }
    for (let i = kids.length - 1; i >= 0; i--) {
      const [child, step] = kids[i] as [unknown, string];
      stack.push([child, path + step]);
    }
  }
  return "value";
}

function children(node: object): [unknown, string][] {
  const out: [unknown, string][] = [];
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) out.push([node[i], `[${i}]`]);
  } else if (node instanceof Map) {
    for (const [key, value] of node) {
      const label = typeof key === "string" ? JSON.stringify(key) : describeValue(key);
      out.push([key, `.keys(<${label}>)`]);
      out.push([value, `.get(${label})`]);
    }
  } else if (node instanceof Set) {
    for (const item of node) out.push([item, ".values(<element>)"]);
  } else if (PyObject.isInstance(node)) {
    out.push([node.callable, ".callable"]);
    node.args.forEach((a, i) => {
      out.push([a, `.args[${i}]`]);
    });
    if (node.kwargs !== undefined)
      for (const [k, v] of Object.entries(node.kwargs)) out.push([v, `.kwargs.${k}`]);
    node.listItems?.forEach((item, i) => {
      out.push([item, `.listItems[${i}]`]);
    });
    node.dictItems?.forEach((pair, i) => {
      out.push([pair[0], `.dictItems[${i}][0]`]);
      out.push([pair[1], `.dictItems[${i}][1]`]);
    });
    out.push([node.state, ".state"]);
  } else if (!ArrayBuffer.isView(node) && !PyGlobal.isInstance(node)) {
    for (const key of Object.keys(node)) {
      out.push([
        (node as Record<string, unknown>)[key],
        identifier.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`,
      ]);
    }
  }
  return out;
}
