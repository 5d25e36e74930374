import {
  decode,
  isByteArray,
  isFrozenSet,
  isNdArray,
  isTuple,
  PyGlobal,
  PyObject,
} from "@sheepdog/serialise";

/** The longest repr shown; longer ones end in `...`. */
export const MAX_REPR_CHARS = 240;
/** Pickles larger than this are not decoded for display (the page says their size instead). */
export const MAX_DECODED_BYTES = 256 * 1024;

const MAX_ITEMS = 12;
const MAX_DEPTH = 4;

/**
 * A short, Python-like repr of a pickle's value (`(1, 'a', [2.5, None])`), cut at
 * {@link MAX_REPR_CHARS}. Decoding runs no code; a pickle that cannot be decoded, or is too
 * large to decode here, is described instead. Never throws.
 */
export function pickleRepr(bytes: Uint8Array): string {
  if (bytes.byteLength > MAX_DECODED_BYTES) return `<${bytes.byteLength} bytes of pickle>`;
  let value: unknown;
  try {
    value = decode(bytes);
  } catch {
    return `<${bytes.byteLength} bytes that are not a readable pickle>`;
  }
  return clip(repr(value, 0));
}

function clip(text: string): string {
  return text.length > MAX_REPR_CHARS ? `${text.slice(0, MAX_REPR_CHARS - 3)}...` : text;
}

function items(values: Iterable<unknown>, depth: number, show: (v: unknown) => string): string {
  const out: string[] = [];
  let count = 0;
  for (const value of values) {
    if (count++ === MAX_ITEMS) {
      out.push("...");
      break;
    }
    out.push(depth >= MAX_DEPTH ? "..." : show(value));
  }
  return out.join(", ");
}

function stringRepr(text: string): string {
  const body = JSON.stringify(text.length > MAX_REPR_CHARS ? text.slice(0, MAX_REPR_CHARS) : text)
    .slice(1, -1)
    .replace(/\\"/g, '"')
    .replace(/'/g, "\\'");
  return `'${body}'`;
}

function bytesRepr(bytes: Uint8Array): string {
  let body = "";
  for (const byte of bytes.subarray(0, MAX_REPR_CHARS)) {
    if (byte === 0x27 || byte === 0x5c) body += `\\${String.fromCharCode(byte)}`;
    else if (byte >= 0x20 && byte < 0x7f) body += String.fromCharCode(byte);
    else body += `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return `b'${body}'`;
}

function numberRepr(value: number): string {
  if (Number.isNaN(value)) return "nan";
  if (value === Number.POSITIVE_INFINITY) return "inf";
  if (value === Number.NEGATIVE_INFINITY) return "-inf";
  return String(value);
}

function objectRepr(value: PyObject, depth: number): string {
  const args = items(value.args, depth + 1, (v) => repr(v, depth + 1));
  return `${value.type ?? "object"}(${args})`;
}

function containerRepr(value: object, depth: number): string | undefined {
  const inner = (v: unknown) => repr(v, depth + 1);
  if (isNdArray(value)) return `ndarray([${items(value as Iterable<unknown>, depth, inner)}])`;
  if (isTuple(value)) {
    return value.length === 1 ? `(${inner(value[0])},)` : `(${items(value, depth, inner)})`;
  }
  if (Array.isArray(value)) return `[${items(value, depth, inner)}]`;
  if (isByteArray(value)) return `bytearray(${bytesRepr(value)})`;
  if (value instanceof Uint8Array) return bytesRepr(value);
  if (value instanceof Set) {
    const body = items(value, depth, inner);
    if (isFrozenSet(value)) return `frozenset({${body}})`;
    return value.size === 0 ? "set()" : `{${body}}`;
  }
  if (value instanceof Map) {
    return `{${items(value, depth, (pair) => mapEntry(pair as [unknown, unknown], depth))}}`;
  }
  return undefined;
}

function mapEntry([key, value]: [unknown, unknown], depth: number): string {
  return `${repr(key, depth + 1)}: ${repr(value, depth + 1)}`;
}

function repr(value: unknown, depth: number): string {
  switch (typeof value) {
    case "string":
      return stringRepr(value);
    case "number":
      return numberRepr(value);
    case "bigint":
      return value.toString();
    case "boolean":
      return value ? "True" : "False";
    case "object":
      break;
    default:
      return String(value);
  }
  if (value === null) return "None";
  if (PyObject.isInstance(value)) return objectRepr(value, depth);
  if (PyGlobal.isInstance(value)) return value.toString();
  const container = containerRepr(value, depth);
  if (container !== undefined) return container;
  if (ArrayBuffer.isView(value)) return `<${value.constructor.name}>`;
  return `{${items(Object.entries(value), depth, (pair) => mapEntry(pair as [unknown, unknown], depth))}}`;
}
