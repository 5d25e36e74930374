import { isNdArray } from "@sheepdog/core";

/**
 * Python values as JSON, for results printed by the command line. JSON has no bytes, sets,
 * non-string keys, big integers or NaN, so those are spelled out:
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
 *
 * Tuples become arrays; a float like 2.0 becomes 2.
 */
export function toJsonValue(value: unknown, seen = new Set<object>()): unknown {
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
  if (seen.has(value)) return { $object: "recursive reference" };
  seen.add(value);
  try {
    if (isNdArray(value)) {
      const data = Array.from(value as ArrayLike<number | bigint>, (item) =>
        toJsonValue(value.dtype === "bool" ? item === 1 : item, seen),
      );
      return { $ndarray: { dtype: value.dtype, shape: [...value.shape], data } };
    }
    if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString("base64") };
    if (Array.isArray(value)) return value.map((item) => toJsonValue(item, seen));
    if (value instanceof Set) return { $set: [...value].map((item) => toJsonValue(item, seen)) };
    if (value instanceof Map) {
      return { $dict: [...value].map(([k, v]) => [toJsonValue(k, seen), toJsonValue(v, seen)]) };
    }
    const prototype = Object.getPrototypeOf(value);
    if (prototype === Object.prototype || prototype === null) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = toJsonValue(v, seen);
      return out;
    }
    if (typeof (value as { valueOf(): unknown }).valueOf === "function") {
      const primitive = (value as { valueOf(): unknown }).valueOf();
      if (typeof primitive === "number") return toJsonValue(primitive, seen);
    }
    const type = (value as { type?: unknown }).type;
    return { $object: typeof type === "string" ? type : "python object" };
  } finally {
    seen.delete(value);
  }
}

/** One JSON line for a value. */
export function jsonLine(value: unknown): string {
  return JSON.stringify(toJsonValue(value));
}
