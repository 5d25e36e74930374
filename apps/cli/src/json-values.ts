import { isNdArray } from "@sheepdog/core";

/**
 * Python values as JSON, for results printed by the command line. JSON has no bytes, sets,
 * non-string keys, big integers, NaN or shared references, so those are spelled out:
 *
 * | value | JSON |
 * |---|---|
 * | int beyond 2^53 (bigint) | `{"$int": "123456789012345678901"}` |
 * | NaN, Infinity, -Infinity | `{"$float": "nan"}`, `{"$float": "inf"}`, `{"$float": "-inf"}` |
 * | bytes, bytearray | `{"$bytes": "<base64>"}` |
 * | numpy array (of numbers or bools) | `{"$ndarray": {"dtype": "float64", "shape": [2, 3], "data": [...]}}` (data flat, row-major) |
 * | set, frozenset | `{"$set": [...]}` |
 * | dict with a non-string key | `{"$dict": [[key, value], ...]}` |
 * | any other Python object | `{"$object": "<type>"}` (its type, when known) |
 * | a list, tuple, dict, set, bytes or array that the value holds more than once (`a = [b, b]`), or that holds itself | its first occurrence `{"$id": 1, "$value": <as above>}`, every later one `{"$ref": 1}` (ids count from 1 in each line) |
 *
 * Tuples become arrays; a float like 2.0 becomes 2. Sharing is kept as it is in Python, so a
 * line is as long as the distinct values in it, however often each is reached (`a = [a, a]`
 * forty times over is 40 lists, not 2^40).
 */
export function toJsonValue(value: unknown): unknown {
  const state: Printing = { shared: sharedNodes(value), ids: new Map() };
  return convert(value, state);
}

/** One JSON line for a value. */
export function jsonLine(value: unknown): string {
  return JSON.stringify(toJsonValue(value));
}

interface Printing {
  /** The nodes reached more than once. */
  shared: Set<object>;
  /** The id of each shared node already printed. */
  ids: Map<object, number>;
}

function isPlainObject(value: object): boolean {
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** A value printed from its contents (and so worth printing once): a container, bytes, an array. */
function isNode(value: unknown): value is object {
  return (
    typeof value === "object" &&
    value !== null &&
    (Array.isArray(value) ||
      value instanceof Uint8Array ||
      isNdArray(value) ||
      value instanceof Set ||
      value instanceof Map ||
      isPlainObject(value))
  );
}

/** The values a node holds that are nodes themselves. */
function childNodes(node: object, into: unknown[]): void {
  if (isNdArray(node) || node instanceof Uint8Array) return;
  if (Array.isArray(node) || node instanceof Set) {
    for (const item of node) if (isNode(item)) into.push(item);
  } else if (node instanceof Map) {
    for (const [k, v] of node) {
      if (isNode(k)) into.push(k);
      if (isNode(v)) into.push(v);
    }
  } else {
    for (const item of Object.values(node)) if (isNode(item)) into.push(item);
  }
}

/** The nodes reached more than once from `root` (shared, or in a cycle), each visited once. */
function sharedNodes(root: unknown): Set<object> {
  const seen = new Set<object>();
  const shared = new Set<object>();
  const stack: unknown[] = isNode(root) ? [root] : [];
  while (stack.length > 0) {
    const node = stack.pop() as object;
    if (seen.has(node)) {
      shared.add(node);
      continue;
    }
    seen.add(node);
    childNodes(node, stack);
  }
  return shared;
}

function convert(value: unknown, state: Printing): unknown {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case "boolean":
    case "string":
      return value;
    case "number":
      if (Number.isNaN(value)) return { $float: "nan" };
      if (!Number.isFinite(value)) return { $float: value > 0 ? "inf" : "-inf" };
      return value;
    case "bigint":
      return { $int: value.toString() };
    case "object":
      break;
    default:
      return { $object: typeof value };
  }
  if (!isNode(value)) return leafObject(value);
  if (!state.shared.has(value)) return convertNode(value, state);
  const printed = state.ids.get(value);
  if (printed !== undefined) return { $ref: printed };
  const id = state.ids.size + 1;
  state.ids.set(value, id);
  return { $id: id, $value: convertNode(value, state) };
}

/** A node's contents as JSON. */
function convertNode(value: object, state: Printing): unknown {
  if (isNdArray(value)) {
    const data = Array.from(value as ArrayLike<number | bigint>, (item) =>
      convert(value.dtype === "bool" ? item === 1 : item, state),
    );
    return { $ndarray: { dtype: value.dtype, shape: [...value.shape], data } };
  }
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString("base64") };
  if (Array.isArray(value)) return value.map((item) => convert(item, state));
  if (value instanceof Set) return { $set: [...value].map((item) => convert(item, state)) };
  if (value instanceof Map) {
    return { $dict: [...value].map(([k, v]) => [convert(k, state), convert(v, state)]) };
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = convert(v, state);
  return out;
}

/** Any other object: a boxed number as its number, else its Python type. */
function leafObject(value: object): unknown {
  if (typeof (value as { valueOf(): unknown }).valueOf === "function") {
    const primitive = (value as { valueOf(): unknown }).valueOf();
    if (typeof primitive === "number")
      return convert(primitive, { shared: new Set(), ids: new Map() });
  }
  const type = (value as { type?: unknown }).type;
  return { $object: typeof type === "string" ? type : "python object" };
}
