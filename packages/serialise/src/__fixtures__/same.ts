import {
  isByteArray,
  isFrozenSet,
  isNdArray,
  isTuple,
  PyFloat,
  PyGlobal,
  PyObject,
} from "../index.js";

/**
 * Compares a value with what came back from a round trip through Python, by this codec's rules:
 * a safe-range bigint comes back as a number, a PyFloat as a number, a Map whose keys are all
 * strings as a plain object; everything else keeps its kind (tuple, frozenset, bytearray markers
 * included) and its sharing (an object seen twice on one side is one object on the other).
 * Returns undefined when they match, else where they differ.
 */
export function sameValue(expected: unknown, actual: unknown): string | undefined {
  return compare(expected, actual, "value", new Map());
}

const SAFE = 9007199254740991n;

function isPlain(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function entriesOf(v: unknown): [unknown, unknown][] | undefined {
  if (v instanceof Map) return [...v];
  if (isPlain(v)) return Object.keys(v).map((k) => [k, v[k]]);
  return undefined;
}

function compare(
  a: unknown,
  b: unknown,
  path: string,
  seen: Map<object, unknown>,
): string | undefined {
  if (typeof a === "bigint" && a >= -SAFE && a <= SAFE) a = Number(a);
  if (PyFloat.isInstance(a)) a = a.value;
  if (typeof a !== "object" || a === null) {
    return Object.is(a, b) ? undefined : `${path}: ${show(a)} !== ${show(b)}`;
  }
  // Python has one empty tuple and never memoizes it, so its sharing cannot survive.
  const identityKept = !(isTuple(a) && a.length === 0);
  if (identityKept && seen.has(a)) {
    return seen.get(a) === b ? undefined : `${path}: sharing differs`;
  }
  if (identityKept) seen.set(a, b);
  if (typeof b !== "object" || b === null) return `${path}: object vs ${show(b)}`;
  if (Array.isArray(a)) {
    if (!Array.isArray(b)) return `${path}: array vs ${b.constructor.name}`;
    if (isTuple(a) !== isTuple(b)) return `${path}: tuple marker differs`;
    if (a.length !== b.length) return `${path}: length ${a.length} !== ${b.length}`;
    for (let i = 0; i < a.length; i++) {
      const d = compare(a[i], b[i], `${path}[${i}]`, seen);
      if (d) return d;
    }
    return undefined;
  }
  if (isNdArray(a)) {
    if (!isNdArray(b)) return `${path}: numpy array vs ${b.constructor.name}`;
    if (a.constructor !== b.constructor || a.dtype !== b.dtype) {
      return `${path}: ${a.constructor.name} ${a.dtype} !== ${b.constructor.name} ${b.dtype}`;
    }
    if (a.shape.join() !== b.shape.join()) return `${path}: shape ${a.shape} !== ${b.shape}`;
    const x = [...a];
    const y = [...b];
    return x.every((v, i) => Object.is(v, y[i])) ? undefined : `${path}: elements differ`;
  }
  if (a instanceof Uint8Array) {
    if (!(b instanceof Uint8Array)) return `${path}: bytes vs ${b.constructor.name}`;
    if (isByteArray(a) !== isByteArray(b)) return `${path}: bytearray marker differs`;
    return Buffer.from(a).equals(Buffer.from(b)) ? undefined : `${path}: bytes differ`;
  }
  if (a instanceof Set) {
    if (!(b instanceof Set)) return `${path}: Set vs ${b.constructor.name}`;
    if (isFrozenSet(a) !== isFrozenSet(b)) return `${path}: frozenset marker differs`;
    if (a.size !== b.size) return `${path}: size ${a.size} !== ${b.size}`;
    const rest = [...b];
    for (const x of a) {
      const i = rest.findIndex((y) => compare(x, y, path, new Map(seen)) === undefined);
      if (i < 0) return `${path}: element ${show(x)} missing`;
      rest.splice(i, 1);
    }
    return undefined;
  }
  const ea = entriesOf(a);
  if (ea !== undefined) {
    const eb = entriesOf(b);
    if (eb === undefined) return `${path}: dict vs ${b.constructor.name}`;
    if (ea.length !== eb.length) return `${path}: ${ea.length} keys !== ${eb.length}`;
    if (ea.every(([k]) => typeof k === "string") !== isPlain(b)) {
      return `${path}: expected a ${isPlain(b) ? "Map" : "plain object"}`;
    }
    for (const [k, v] of ea) {
      const match = eb.find(([k2]) => compare(k, k2, path, new Map()) === undefined);
      if (match === undefined) return `${path}: key ${show(k)} missing`;
      const d = compare(v, match[1], `${path}[${show(k)}]`, seen);
      if (d) return d;
    }
    return undefined;
  }
  if (PyGlobal.isInstance(a)) {
    return PyGlobal.isInstance(b) && a.module === b.module && a.name === b.name
      ? undefined
      : `${path}: global ${a.toString()} !== ${show(b)}`;
  }
  if (PyObject.isInstance(a)) {
    if (!PyObject.isInstance(b)) return `${path}: PyObject vs ${b.constructor.name}`;
    if (a.kind !== b.kind) return `${path}: kind ${a.kind} !== ${b.kind}`;
    for (const field of [
      "callable",
      "args",
      "kwargs",
      "listItems",
      "dictItems",
      "state",
    ] as const) {
      // No items and an empty list of items write the same pickle.
      const empty = (v: unknown) => (Array.isArray(v) && v.length === 0 ? undefined : v);
      const x = field === "listItems" || field === "dictItems" ? empty(a[field]) : a[field];
      const y = field === "listItems" || field === "dictItems" ? empty(b[field]) : b[field];
      if (field === "args") {
        // Arguments are always a tuple on the wire, whatever array the caller passed.
        const d = compare([...(x as unknown[])], [...(y as unknown[])], `${path}.args`, seen);
        if (d) return d;
        continue;
      }
      if (field === "dictItems" && x !== undefined && y !== undefined) {
        const d = compare(
          (x as unknown[][]).map((p) => [...p]),
          (y as unknown[][]).map((p) => [...p]),
          `${path}.dictItems`,
          seen,
        );
        if (d) return d;
        continue;
      }
      const d = compare(x, y, `${path}.${field}`, seen);
      if (d) return d;
    }
    return undefined;
  }
  return `${path}: cannot compare ${a.constructor.name}`;
}

function show(v: unknown): string {
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === "number") return Object.is(v, -0) ? "-0" : String(v);
  if (typeof v === "object" && v !== null) return v.constructor?.name ?? "object";
  return String(v);
}
