import { SheepdogError } from "@sheepdog/contracts";
import { DEFAULT_MAX_DEPTH } from "./encode.js";
import { PickleDecodeError } from "./errors.js";
import { IMPORT_MAPPING, NAME_MAPPING } from "./internal/compat-names.js";
import { readFloat64BE as float64BE } from "./internal/float64.js";
import { finishGraph, GraphTooDeep } from "./internal/graph.js";
import { BUDGET_SPENT, numpyBuild, numpyReduce } from "./internal/numpy.js";
import { OPCODE_NAMES } from "./internal/opcodes.js";
import { source } from "./internal/source.js";
import {
  cString,
  escapeDecode,
  floatText,
  isIndexText,
  pythonIntText,
  rawUnicodeEscapeDecode,
  strtolWhole,
} from "./internal/text-args.js";
import { decodeLatin1, decodeUtf8 } from "./internal/utf8.js";
import {
  asTuple,
  frozenSetMarker,
  markByteArray,
  markFrozenSet,
  ndarrayMarker,
  PyGlobal,
  PyObject,
  tupleMarker,
} from "./values.js";

/** Options of {@link decode}. */
export interface DecodeOptions {
  /**
   * The deepest nesting of containers accepted; deeper pickles fail with `PICKLE_DECODE`.
   * @default 1000
   */
  maxDepth?: number;
  /**
   * Return bytes and bytearray values as views into `input` instead of copies. Faster for big
   * values, but they then share memory with `input`: writing to one changes the other, and they
   * keep all of `input` alive. Leave off unless `input` is yours and will not be reused.
   * @default false
   */
  zeroCopy?: boolean;
}

/** CPython refuses to convert longer decimal strings to int (sys.int_info.default_max_str_digits). */
const MAX_INT_DIGITS = 4300;

const TRUNCATED_HINT =
  "The pickle is truncated: check that all of it was received (a body cut short, a file still being written).";

type Dict = Record<string, unknown>;

function opName(op: number): string {
  return OPCODE_NAMES[op] ?? `unknown opcode 0x${op.toString(16).padStart(2, "0")}`;
}

function bad(opPos: number, op: number, reason: string, hint?: string): PickleDecodeError {
  return new PickleDecodeError(opPos, opName(op), reason, hint);
}

function truncated(opPos: number, op: number, need: number, have: number): PickleDecodeError {
  return bad(opPos, op, `it needs ${need} more bytes but only ${have} remain`, TRUNCATED_HINT);
}

function tooLong(opPos: number, op: number, length: number, have: number): PickleDecodeError {
  return bad(
    opPos,
    op,
    `its length field says ${length} bytes but only ${have} remain`,
    TRUNCATED_HINT,
  );
}

function underflow(opPos: number, op: number): PickleDecodeError {
  return bad(
    opPos,
    op,
    "stack underflow: it needs more values than the stack holds above the last MARK",
  );
}

function noMark(opPos: number, op: number): PickleDecodeError {
  return bad(opPos, op, "there is no MARK to pop");
}

function overBudget(opPos: number, op: number): PickleDecodeError {
  return bad(
    opPos,
    op,
    "it copies more than the pickle's own length: one shared value rebuilt over and over",
    "Check where the pickle came from: CPython never writes one like it.",
  );
}

function tooDeep(opPos: number, op: number, maxDepth: number): PickleDecodeError {
  return bad(
    opPos,
    op,
    `the value is nested deeper than maxDepth (${maxDepth})`,
    "If the pickle is trusted and really this deep, raise decode's maxDepth option.",
  );
}

/** True for a value that holds other values (what aliasing and depth care about). */
function isContainer(v: unknown): boolean {
  return typeof v === "object" && v !== null && !ArrayBuffer.isView(v) && !(v instanceof PyGlobal);
}

function isPlainDict(v: unknown): v is Dict {
  return typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

function isTupleValue(v: unknown): v is unknown[] {
  return Array.isArray(v) && (v as unknown as Record<symbol, unknown>)[tupleMarker] === true;
}

function describe(v: unknown): string {
  if (v === null) return "None";
  if (Array.isArray(v)) return isTupleValue(v) ? "a tuple" : "a list";
  if (v instanceof Map || isPlainDict(v)) return "a dict";
  if (v instanceof Set) return "a set";
  if (ArrayBuffer.isView(v)) return ndarrayMarker in v ? "a numpy array" : "bytes";
  if (v instanceof PyGlobal) return `the global ${v.toString()}`;
  if (v instanceof PyObject) return "an object";
  return `a ${typeof v}`;
}

/**
 * Mutable state the rare opcodes share with the main loop. One instance is kept and reused (see
 * `idle` below): an object of this class alive between calls keeps V8's hidden class, and so the
 * optimized decoder, from being thrown away by a garbage collection.
 */
class Ctx {
  /**
   * Values replaced after they were pushed: dicts that met a non-str key and became Maps, numpy
   * arrays that became typed arrays at their BUILD. Old object -> new value.
   */
  replaced: Map<object, unknown> | undefined = undefined;
  /** A container was fetched from the memo or duplicated: the value may be a graph, not a tree. */
  aliased = false;
  /** Memo entries at indices past the dense array (only hostile or unusual pickles). */
  sparseMemo: Map<number, unknown> | undefined = undefined;
  maxDepth = DEFAULT_MAX_DEPTH;
  zeroCopy = false;
  /**
   * How many more items or bytes the known reductions may copy (see {@link knownReduce}). It
   * starts at twice the input's length: CPython writes each copied list, str or bytes value once
   * and copies it at most twice (bytearray(_codecs.encode(text, 'latin1')) before protocol 3), so
   * a real pickle never copies more, while a hostile one that rebuilds one shared value over and
   * over would otherwise cost time and memory quadratic in its length.
   */
  copyBudget = 0;

  begin(maxDepth: number, zeroCopy: boolean, inputLength: number): void {
    this.maxDepth = maxDepth;
    this.zeroCopy = zeroCopy;
    this.copyBudget = 2 * inputLength;
  }

  /** Takes `n` from the copy budget; false when it is spent. */
  spend(n: number): boolean {
    this.copyBudget -= n;
    return this.copyBudget >= 0;
  }

  /** Drops references to the decoded values. */
  finish(): void {
    this.replaced = undefined;
    this.aliased = false;
    this.sparseMemo = undefined;
  }
}

let idle: Ctx | undefined = new Ctx();

function setDictKey(dict: Dict, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(dict, key, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  } else {
    dict[key] = value;
  }
}

function dictToMap(dict: Dict, ctx: Ctx): Map<unknown, unknown> {
  const map = new Map<unknown, unknown>();
  for (const key of Object.keys(dict)) map.set(key, dict[key]);
  if (ctx.replaced === undefined) ctx.replaced = new Map();
  ctx.replaced.set(dict, map);
  return map;
}

/** Builds a dict from alternating keys and values in `stack[from, to)`. */
function buildDict(
  stack: unknown[],
  from: number,
  to: number,
  ctx: Ctx,
): Dict | Map<unknown, unknown> {
  let target: Dict | Map<unknown, unknown> = {};
  for (let i = from; i < to; i += 2) {
    const key = stack[i];
    if (typeof key === "string" && !(target instanceof Map)) {
      setDictKey(target, key, stack[i + 1]);
    } else {
      if (!(target instanceof Map)) target = dictToMap(target, ctx);
      target.set(key, stack[i + 1]);
    }
  }
  return target;
}

/**
 * SETITEM / SETITEMS: sets the pairs in `stack[from, to)` on `stack[at]`. Returns false when that
 * is not something items can be set on.
 */
function setItems(stack: unknown[], at: number, from: number, to: number, ctx: Ctx): boolean {
  let target = stack[at];
  if (ctx.replaced !== undefined && typeof target === "object" && target !== null) {
    const map = ctx.replaced.get(target);
    if (map instanceof Map) {
      stack[at] = map;
      target = map;
    } else if (map !== undefined) return false; // a numpy array
  }
  if (isPlainDict(target)) {
    for (let i = from; i < to; i += 2) {
      const key = stack[i];
      if (typeof key === "string") {
        if (key !== "__proto__") target[key] = stack[i + 1];
        else setDictKey(target, key, stack[i + 1]);
      } else {
        const map = dictToMap(target, ctx);
        stack[at] = map;
        for (let j = i; j < to; j += 2) map.set(stack[j], stack[j + 1]);
        return true;
      }
    }
    return true;
  }
  if (target instanceof Map) {
    for (let i = from; i < to; i += 2) target.set(stack[i], stack[i + 1]);
    return true;
  }
  if (target instanceof PyObject) {
    if (target.dictItems === undefined) target.dictItems = [];
    const items = target.dictItems;
    for (let i = from; i < to; i += 2) items.push([stack[i], stack[i + 1]]);
    return true;
  }
  return false;
}

/** APPEND / APPENDS onto `target`. Returns false when it is not a list or an object. */
function appendItems(target: unknown, stack: unknown[], from: number, to: number): boolean {
  if (
    Array.isArray(target) &&
    (target as unknown as Record<symbol, unknown>)[tupleMarker] !== true
  ) {
    for (let i = from; i < to; i++) target.push(stack[i]);
    return true;
  }
  if (target instanceof PyObject) {
    if (target.listItems === undefined) target.listItems = [];
    const items = target.listItems;
    for (let i = from; i < to; i++) items.push(stack[i]);
    return true;
  }
  return false;
}

const NOT_KNOWN = Symbol("not known");
const OVER_BUDGET = Symbol("over the copy budget");

/**
 * The few reductions CPython writes for core types before protocol 4 (bytes, bytearray, set,
 * frozenset) become JavaScript values. This reads data; it calls nothing. What it copies is
 * taken from `ctx`'s copy budget: `OVER_BUDGET` when that is spent.
 */
function knownReduce(callable: PyGlobal, args: unknown[], ctx: Ctx): unknown {
  const { module, name } = callable;
  const first = args[0];
  if (module === "builtins") {
    switch (name) {
      case "set":
      case "frozenset": {
        let set: Set<unknown>;
        if (args.length === 0) set = new Set();
        else if (args.length === 1 && Array.isArray(first)) {
          if (!ctx.spend(first.length)) return OVER_BUDGET;
          set = new Set(first);
        } else return NOT_KNOWN;
        return name === "frozenset" ? markFrozenSet(set) : set;
      }
      case "bytearray": {
        if (args.length === 0) return markByteArray(new Uint8Array(0));
        if (args.length === 1 && first instanceof Uint8Array) {
          return ctx.spend(first.length) ? markByteArray(first.slice()) : OVER_BUDGET;
        }
        if (args.length === 2 && typeof first === "string" && isLatin1Name(args[1])) {
          if (!ctx.spend(first.length)) return OVER_BUDGET;
          const bytes = latin1Bytes(first);
          return bytes === undefined ? NOT_KNOWN : markByteArray(bytes);
        }
        return NOT_KNOWN;
      }
      case "bytes":
        return args.length === 0 ? new Uint8Array(0) : NOT_KNOWN;
    }
    return NOT_KNOWN;
  }
  if (module === "_codecs" && name === "encode" && args.length === 2) {
    if (typeof first === "string" && isLatin1Name(args[1])) {
      if (!ctx.spend(first.length)) return OVER_BUDGET;
      return latin1Bytes(first) ?? NOT_KNOWN;
    }
  }
  if (module.startsWith("numpy.")) {
    const value = numpyReduce(callable, args, ctx);
    return value === undefined ? NOT_KNOWN : value === BUDGET_SPENT ? OVER_BUDGET : value;
  }
  return NOT_KNOWN;
}

function isLatin1Name(v: unknown): boolean {
  return v === "latin1" || v === "latin-1";
}

function latin1Bytes(text: string): Uint8Array | undefined {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) return undefined;
    out[i] = c;
  }
  return out;
}

/** Longer than any module or name in the Python 2 tables, so longer ones are not looked up. */
const COMPAT_NAME_LIMIT = 64;

function findClass(module: string, name: string, proto: number): PyGlobal {
  // Only short names are looked up: a hostile pickle may name a global with one long memoized
  // string many times, and joining it into a key costs its length each time.
  if (proto < 3 && module.length <= COMPAT_NAME_LIMIT && name.length <= COMPAT_NAME_LIMIT) {
    // As CPython's Unpickler.find_class with fix_imports: Python 2 names to Python 3 ones.
    const renamed = NAME_MAPPING.get(`${module}\n${name}`);
    if (renamed !== undefined) {
      const [m, n] = renamed.split("\n") as [string, string];
      return new PyGlobal(m, n);
    }
    const m = IMPORT_MAPPING.get(module);
    if (m !== undefined) return new PyGlobal(m, name);
  }
  return new PyGlobal(module, name);
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** LONG1 / LONG4 data: little-endian two's complement. */
function decodeLong(bytes: Uint8Array, pos: number, n: number): number | bigint {
  if (n === 0) return 0;
  const top = bytes[pos + n - 1] as number;
  if (n <= 6) {
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + (bytes[pos + i] as number);
    if (top >= 0x80) v -= 2 ** (8 * n);
    return v;
  }
  let hex: string;
  if (n <= 64) {
    hex = "";
    for (let i = n - 1; i >= 0; i--) hex += HEX[bytes[pos + i] as number];
  } else {
    hex = Buffer.from(bytes.subarray(pos, pos + n))
      .reverse()
      .toString("hex");
  }
  let big = BigInt(`0x${hex}`);
  if (top >= 0x80) big -= 1n << BigInt(8 * n);
  return big >= -9007199254740991n && big <= 9007199254740991n ? Number(big) : big;
}

function u32(b: Uint8Array, p: number): number {
  return (
    ((b[p] as number) |
      ((b[p + 1] as number) << 8) |
      ((b[p + 2] as number) << 16) |
      ((b[p + 3] as number) << 24)) >>>
    0
  );
}

function i32(b: Uint8Array, p: number): number {
  return (
    (b[p] as number) |
    ((b[p + 1] as number) << 8) |
    ((b[p + 2] as number) << 16) |
    ((b[p + 3] as number) << 24)
  );
}

function readU64(b: Uint8Array, pos: number): number {
  const lo = u32(b, pos);
  const hi = u32(b, pos + 4);
  // Anything past 2^53 is longer than any input; report it as "huge".
  return hi >= 0x200000 ? Number.MAX_SAFE_INTEGER : hi * 0x100000000 + lo;
}

/** The text of a protocol 0 argument line, without its newline. */
function lineEnd(bytes: Uint8Array, pos: number, opPos: number, op: number): number {
  const nl = bytes.indexOf(0x0a, pos);
  if (nl < 0) throw bad(opPos, op, "its text argument has no terminating newline", TRUNCATED_HINT);
  return nl;
}

/** A bigint as the codec gives Python ints: a number when it is safe. */
function intValue(value: bigint): number | bigint {
  return value >= -9007199254740991n && value <= 9007199254740991n ? Number(value) : value;
}

/** Python's int(text, 0), as CPython reads LONG and the INTs strtol cannot. */
function parsePythonInt(text: string, opPos: number, op: number): number | bigint {
  const literal = pythonIntText(text);
  if (literal === undefined) throw bad(opPos, op, "its argument is not an integer");
  const { negative, radix, digits } = literal;
  if (radix === 10 && digits.length > MAX_INT_DIGITS) {
    throw bad(
      opPos,
      op,
      `an integer of ${digits.length} decimal digits exceeds CPython's limit of ${MAX_INT_DIGITS}`,
    );
  }
  const prefix = radix === 16 ? "0x" : radix === 8 ? "0o" : radix === 2 ? "0b" : "";
  const magnitude = BigInt(prefix + digits);
  return intValue(negative ? -magnitude : magnitude);
}

/**
 * INT's text as CPython's C unpickler reads it: strtol with base 0 (so `010` is octal 8), a bool
 * for a two-character text it reads as 0 or 1 (`00`, `01`, `+1`), else int(text, 0).
 */
function parseIntOpcode(line: string, opPos: number, op: number): unknown {
  if (line.length === 0) throw bad(opPos, op, "its argument is empty");
  const text = cString(line);
  const value = strtolWhole(text);
  if (value === undefined) return parsePythonInt(text, opPos, op);
  if (line.length === 2 && (value === 0n || value === 1n)) return value === 1n;
  return intValue(value);
}

/** LONG's text as CPython reads it: int(text, 0) after dropping one trailing L. */
function parseLongOpcode(line: string, opPos: number, op: number): number | bigint {
  const text = cString(line.endsWith("L") ? line.slice(0, -1) : line);
  return parsePythonInt(text, opPos, op);
}

function parseIndex(text: string, opPos: number, op: number): number {
  if (!isIndexText(text)) {
    throw bad(opPos, op, "its memo index is not a small non-negative integer");
  }
  return Number(text);
}

function parseFloatText(line: string, opPos: number, op: number): number {
  const value = floatText(cString(line));
  if (value === undefined) throw bad(opPos, op, "its argument is not a float");
  if (value === null) throw bad(opPos, op, "its argument is too large for a float");
  return value;
}

function toBytes(input: unknown): Uint8Array {
  if (input instanceof Uint8Array) {
    // A plain Uint8Array as it is; a subclass (Buffer, whose slice() does not copy) as a view.
    if (Object.getPrototypeOf(input) === Uint8Array.prototype) return input;
    return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  }
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  throw new SheepdogError(
    "INVALID_INPUT",
    source,
    "decode takes a Uint8Array (a Buffer is one) or an ArrayBuffer.",
  );
}

/**
 * Unpickles bytes written by Python's `pickle` (protocols 0 to 5), without running any code:
 * objects that are not plain data come back as {@link PyObject} / {@link PyGlobal} recipes that
 * `encode` writes back unchanged.
 *
 * Mapping: None -> `null`, bool -> boolean, int -> number (bigint beyond ±(2^53 - 1)), float ->
 * number, str -> string, bytes -> Uint8Array, bytearray -> {@link isByteArray} Uint8Array, list ->
 * Array, tuple -> {@link isTuple} Array, dict -> plain object when every key is a str, else Map,
 * set -> Set, frozenset -> {@link isFrozenSet} Set. Shared and recursive references are kept.
 *
 * Memory is bounded by the input: length fields are checked against the bytes left before
 * anything is allocated, and every opcode consumes input.
 *
 * @throws PickleDecodeError (code `PICKLE_DECODE`) with the byte offset and opcode, for
 *   truncated, invalid or hostile input.
 *
 * @example
 * ```ts
 * const value = decode(bytesFromPython); // e.g. { total: 3, items: [1, 2] }
 * ```
 */
export function decode(input: Uint8Array | ArrayBuffer, options: DecodeOptions = {}): unknown {
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  if (!Number.isInteger(maxDepth) || maxDepth < 1) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `maxDepth must be a positive integer, not ${String(maxDepth)}.`,
    );
  }
  const bytes = toBytes(input);
  const scalar = lonePickledScalar(bytes);
  if (scalar !== NOT_A_LONE_SCALAR) return scalar;
  const ctx = idle ?? new Ctx();
  idle = undefined;
  ctx.begin(maxDepth, options.zeroCopy === true, bytes.length);
  try {
    return run(bytes, ctx);
  } finally {
    ctx.finish();
    idle = ctx;
  }
}

/** What {@link lonePickledScalar} returns for any other pickle. */
const NOT_A_LONE_SCALAR = Symbol("not a lone scalar");

/**
 * The value of a pickle that holds one int of up to 32 bits, float, None or bool and nothing
 * else (PROTO 2 to 5, a FRAME of exactly the rest or none, the one opcode, STOP), read straight
 * off its bytes as the machine would read it; {@link NOT_A_LONE_SCALAR} for any other. Most
 * results are such pickles, and setting up the machine costs more than reading them.
 */
function lonePickledScalar(bytes: Uint8Array): unknown {
  const end = bytes.length;
  if (end < 4 || end > 20 || bytes[0] !== 0x80 || (bytes[1] as number) > 5) {
    return NOT_A_LONE_SCALAR;
  }
  let pos = 2;
  if (bytes[pos] === 0x95) {
    if (end < 13 || readU64(bytes, pos + 1) !== end - 11) return NOT_A_LONE_SCALAR;
    pos = 11;
  }
  if (bytes[end - 1] !== 0x2e) return NOT_A_LONE_SCALAR;
  const size = end - pos - 2;
  switch (bytes[pos]) {
    case 0x4e: // NONE
      return size === 0 ? null : NOT_A_LONE_SCALAR;
    case 0x88: // NEWTRUE
      return size === 0 ? true : NOT_A_LONE_SCALAR;
    case 0x89: // NEWFALSE
      return size === 0 ? false : NOT_A_LONE_SCALAR;
    case 0x4b: // BININT1
      return size === 1 ? bytes[pos + 1] : NOT_A_LONE_SCALAR;
    case 0x4d: // BININT2
      return size === 2
        ? (bytes[pos + 1] as number) | ((bytes[pos + 2] as number) << 8)
        : NOT_A_LONE_SCALAR;
    case 0x4a: // BININT
      return size === 4 ? i32(bytes, pos + 1) : NOT_A_LONE_SCALAR;
    case 0x47: // BINFLOAT
      return size === 8 ? float64BE(bytes, pos + 1) : NOT_A_LONE_SCALAR;
    default:
      return NOT_A_LONE_SCALAR;
  }
}

/** The pickle machine. */
function run(bytes: Uint8Array, ctx: Ctx): unknown {
  const end = bytes.length;
  const maxDepth = ctx.maxDepth;
  const zeroCopy = ctx.zeroCopy;
  // The stack is stack[0, sp); slots past sp are stale and get overwritten. Tracking sp by hand
  // avoids resizing the arrays on every pop.
  const stack: unknown[] = [];
  /** The nesting depth of each stack value: 0 for scalars. */
  const depths: number[] = [];
  let sp = 0;
  const marks: number[] = [];
  let fence = 0;
  const memo: unknown[] = [];
  // The newest empty list, while nothing but its stack slot and at most one memo entry refers to
  // it. Its first APPEND(S) then swaps it for an exactly sized copy of the items: growing an
  // empty array by push() over-allocates (16 slots for 2 items), which costs memory and GC time.
  let pendingList: unknown[] | undefined;
  let pendingIndex = -1;
  let proto = 0;
  let pos = 0;
  let opPos = 0;
  let op = 0;

  try {
    for (;;) {
      if (pos >= end) {
        throw new PickleDecodeError(
          end,
          undefined,
          "the input ends before the STOP opcode",
          TRUNCATED_HINT,
        );
      }
      opPos = pos;
      op = bytes[pos++] as number;
      switch (op) {
        // ---- scalars ----
        case 0x4b: {
          // BININT1
          if (pos >= end) throw truncated(opPos, op, 1, 0);
          stack[sp] = bytes[pos++];
          depths[sp++] = 0;
          break;
        }
        case 0x4d: {
          // BININT2
          if (pos + 2 > end) throw truncated(opPos, op, 2, end - pos);
          stack[sp] = (bytes[pos] as number) | ((bytes[pos + 1] as number) << 8);
          depths[sp++] = 0;
          pos += 2;
          break;
        }
        case 0x4a: {
          // BININT
          if (pos + 4 > end) throw truncated(opPos, op, 4, end - pos);
          stack[sp] =
            (bytes[pos] as number) |
            ((bytes[pos + 1] as number) << 8) |
            ((bytes[pos + 2] as number) << 16) |
            ((bytes[pos + 3] as number) << 24);
          depths[sp++] = 0;
          pos += 4;
          break;
        }
        case 0x8a: {
          // LONG1
          if (pos >= end) throw truncated(opPos, op, 1, 0);
          const n = bytes[pos++] as number;
          if (n > end - pos) throw tooLong(opPos, op, n, end - pos);
          stack[sp] = decodeLong(bytes, pos, n);
          depths[sp++] = 0;
          pos += n;
          break;
        }
        case 0x8b: {
          // LONG4
          if (pos + 4 > end) throw truncated(opPos, op, 4, end - pos);
          const n = i32(bytes, pos);
          pos += 4;
          if (n < 0) throw bad(opPos, op, "its byte count is negative");
          if (n > end - pos) throw tooLong(opPos, op, n, end - pos);
          stack[sp] = decodeLong(bytes, pos, n);
          depths[sp++] = 0;
          pos += n;
          break;
        }
        case 0x47: {
          // BINFLOAT
          if (pos + 8 > end) throw truncated(opPos, op, 8, end - pos);
          stack[sp] = float64BE(bytes, pos);
          depths[sp++] = 0;
          pos += 8;
          break;
        }
        case 0x4e: // NONE
          stack[sp] = null;
          depths[sp++] = 0;
          break;
        case 0x88: // NEWTRUE
          stack[sp] = true;
          depths[sp++] = 0;
          break;
        case 0x89: // NEWFALSE
          stack[sp] = false;
          depths[sp++] = 0;
          break;

        // ---- strings and bytes ----
        case 0x8c: // SHORT_BINUNICODE
        case 0x58: // BINUNICODE
        case 0x8d: {
          // BINUNICODE8
          let n: number;
          if (op === 0x8c) {
            if (pos >= end) throw truncated(opPos, op, 1, 0);
            n = bytes[pos++] as number;
          } else if (op === 0x58) {
            if (pos + 4 > end) throw truncated(opPos, op, 4, end - pos);
            n = u32(bytes, pos);
            pos += 4;
          } else {
            if (pos + 8 > end) throw truncated(opPos, op, 8, end - pos);
            n = readU64(bytes, pos);
            pos += 8;
          }
          if (n > end - pos) throw tooLong(opPos, op, n, end - pos);
          const s = decodeUtf8(bytes, pos, pos + n);
          if (s === undefined) throw bad(opPos, op, "its text is not valid UTF-8");
          stack[sp] = s;
          depths[sp++] = 0;
          pos += n;
          break;
        }
        case 0x43: // SHORT_BINBYTES
        case 0x42: // BINBYTES
        case 0x8e: // BINBYTES8
        case 0x96: {
          // BYTEARRAY8
          let n: number;
          if (op === 0x43) {
            if (pos >= end) throw truncated(opPos, op, 1, 0);
            n = bytes[pos++] as number;
          } else if (op === 0x42) {
            if (pos + 4 > end) throw truncated(opPos, op, 4, end - pos);
            n = u32(bytes, pos);
            pos += 4;
          } else {
            if (pos + 8 > end) throw truncated(opPos, op, 8, end - pos);
            n = readU64(bytes, pos);
            pos += 8;
          }
          if (n > end - pos) throw tooLong(opPos, op, n, end - pos);
          const value = zeroCopy
            ? new Uint8Array(bytes.buffer, bytes.byteOffset + pos, n)
            : bytes.slice(pos, pos + n);
          stack[sp] = op === 0x96 ? markByteArray(value) : value;
          depths[sp++] = 0;
          pos += n;
          break;
        }
        case 0x55: // SHORT_BINSTRING
        case 0x54: {
          // BINSTRING (Python 2 str): decoded as Latin-1 text
          let n: number;
          if (op === 0x55) {
            if (pos >= end) throw truncated(opPos, op, 1, 0);
            n = bytes[pos++] as number;
          } else {
            if (pos + 4 > end) throw truncated(opPos, op, 4, end - pos);
            n = i32(bytes, pos);
            pos += 4;
            if (n < 0) throw bad(opPos, op, "its length is negative");
          }
          if (n > end - pos) throw tooLong(opPos, op, n, end - pos);
          stack[sp] = decodeLatin1(bytes, pos, pos + n);
          depths[sp++] = 0;
          pos += n;
          break;
        }

        // ---- containers ----
        case 0x5d: {
          // EMPTY_LIST
          const list: unknown[] = [];
          pendingList = list;
          pendingIndex = -1;
          stack[sp] = list;
          depths[sp++] = 1;
          break;
        }
        case 0x29: // EMPTY_TUPLE
          stack[sp] = asTuple([]);
          depths[sp++] = 1;
          break;
        case 0x7d: // EMPTY_DICT
          stack[sp] = {};
          depths[sp++] = 1;
          break;
        case 0x8f: // EMPTY_SET
          stack[sp] = new Set();
          depths[sp++] = 1;
          break;
        case 0x85: // TUPLE1
        case 0x86: // TUPLE2
        case 0x87: {
          // TUPLE3
          const n = op - 0x84;
          const from = sp - n;
          if (from < fence) throw underflow(opPos, op);
          let d = 0;
          for (let i = from; i < sp; i++) if ((depths[i] as number) > d) d = depths[i] as number;
          const t = asTuple(stack.slice(from, sp));
          sp = from;
          if (++d > maxDepth) throw tooDeep(opPos, op, maxDepth);
          stack[sp] = t;
          depths[sp++] = d;
          break;
        }
        case 0x74: // TUPLE
        case 0x6c: // LIST
        case 0x91: // FROZENSET
        case 0x64: {
          // DICT
          const m = marks.pop();
          if (m === undefined) throw noMark(opPos, op);
          fence = marks.length > 0 ? (marks[marks.length - 1] as number) : 0;
          let d = 0;
          for (let i = m; i < sp; i++) if ((depths[i] as number) > d) d = depths[i] as number;
          if (++d > maxDepth) throw tooDeep(opPos, op, maxDepth);
          let value: unknown;
          if (op === 0x64) {
            if ((sp - m) % 2 !== 0) throw bad(opPos, op, "it has an odd number of items");
            value = buildDict(stack, m, sp, ctx);
          } else {
            const items = stack.slice(m, sp);
            if (op === 0x74) value = asTuple(items);
            else if (op === 0x6c) value = items;
            else {
              value = markFrozenSet(new Set(items));
            }
          }
          sp = m;
          stack[sp] = value;
          depths[sp++] = d;
          break;
        }
        case 0x61: {
          // APPEND
          const at = sp - 2;
          if (at < fence) throw underflow(opPos, op);
          const d = (depths[at + 1] as number) + 1;
          const target = stack[at];
          if (target === pendingList && (target as unknown[]).length === 0) {
            const list = [stack[at + 1]];
            stack[at] = list;
            if (pendingIndex >= 0 && memo[pendingIndex] === target) memo[pendingIndex] = list;
            pendingList = undefined;
          } else if (!appendItems(target, stack, at + 1, at + 2)) {
            throw bad(opPos, op, `it cannot append to ${describe(target)}`);
          }
          sp = at + 1;
          if (d > (depths[at] as number)) {
            if (d > maxDepth) throw tooDeep(opPos, op, maxDepth);
            depths[at] = d;
          }
          break;
        }
        case 0x65: // APPENDS
        case 0x75: // SETITEMS
        case 0x90: {
          // ADDITEMS
          const m = marks.pop();
          if (m === undefined) throw noMark(opPos, op);
          fence = marks.length > 0 ? (marks[marks.length - 1] as number) : 0;
          const at = m - 1;
          if (at < fence) throw underflow(opPos, op);
          const len = sp;
          let d = depths[at] as number;
          for (let i = m; i < len; i++)
            if ((depths[i] as number) >= d) d = (depths[i] as number) + 1;
          if (d > maxDepth) throw tooDeep(opPos, op, maxDepth);
          const target = stack[at];
          if (op === 0x65) {
            if (target === pendingList && (target as unknown[]).length === 0) {
              const list = stack.slice(m, len);
              stack[at] = list;
              if (pendingIndex >= 0 && memo[pendingIndex] === target) memo[pendingIndex] = list;
              pendingList = undefined;
            } else if (!appendItems(target, stack, m, len)) {
              throw bad(opPos, op, `it cannot append to ${describe(target)}`);
            }
          } else if (op === 0x75) {
            if ((len - m) % 2 !== 0) throw bad(opPos, op, "it has an odd number of items");
            if (!setItems(stack, at, m, len, ctx)) {
              throw bad(opPos, op, `it cannot set items on ${describe(target)}`);
            }
          } else {
            if (
              !(target instanceof Set) ||
              (target as unknown as Record<symbol, unknown>)[frozenSetMarker] === true
            ) {
              throw bad(opPos, op, `it cannot add items to ${describe(target)}`);
            }
            for (let i = m; i < len; i++) target.add(stack[i]);
          }
          sp = m;
          depths[at] = d;
          break;
        }
        case 0x73: {
          // SETITEM
          const at = sp - 3;
          if (at < fence) throw underflow(opPos, op);
          const d = Math.max(depths[at + 1] as number, depths[at + 2] as number) + 1;
          if (!setItems(stack, at, at + 1, at + 3, ctx)) {
            throw bad(opPos, op, `it cannot set items on ${describe(stack[at])}`);
          }
          sp = at + 1;
          if (d > (depths[at] as number)) {
            if (d > maxDepth) throw tooDeep(opPos, op, maxDepth);
            depths[at] = d;
          }
          break;
        }

        // ---- stack and marks ----
        case 0x28: {
          // MARK
          if (marks.length >= maxDepth) throw tooDeep(opPos, op, maxDepth);
          fence = sp;
          marks.push(fence);
          break;
        }
        case 0x31: {
          // POP_MARK
          const m = marks.pop();
          if (m === undefined) throw noMark(opPos, op);
          fence = marks.length > 0 ? (marks[marks.length - 1] as number) : 0;
          sp = m;
          break;
        }
        case 0x30: {
          // POP: a MARK at the top of the stack is popped instead (as CPython's C unpickler)
          if (marks.length > 0 && marks[marks.length - 1] === sp) {
            marks.pop();
            fence = marks.length > 0 ? (marks[marks.length - 1] as number) : 0;
          } else {
            if (sp <= fence) throw underflow(opPos, op);
            sp--;
          }
          break;
        }
        case 0x32: {
          // DUP
          if (sp <= fence) throw underflow(opPos, op);
          const v = stack[sp - 1];
          if (isContainer(v)) ctx.aliased = true;
          if (v === pendingList) pendingList = undefined;
          stack[sp] = v;
          depths[sp++] = depths[sp - 1] as number;
          break;
        }

        // ---- memo ----
        case 0x94: // MEMOIZE
        case 0x71: // BINPUT
        case 0x72: // LONG_BINPUT
        case 0x70: {
          // PUT
          let index: number;
          if (op === 0x94) {
            index = memo.length + (ctx.sparseMemo?.size ?? 0);
          } else if (op === 0x71) {
            if (pos >= end) throw truncated(opPos, op, 1, 0);
            index = bytes[pos++] as number;
          } else if (op === 0x72) {
            if (pos + 4 > end) throw truncated(opPos, op, 4, end - pos);
            index = u32(bytes, pos);
            pos += 4;
          } else {
            const nl = lineEnd(bytes, pos, opPos, op);
            index = parseIndex(decodeLatin1(bytes, pos, nl), opPos, op);
            pos = nl + 1;
          }
          if (sp <= fence) throw underflow(opPos, op);
          const v = stack[sp - 1];
          if (v === pendingList) {
            if (pendingIndex < 0 && index <= memo.length && ctx.sparseMemo === undefined) {
              pendingIndex = index;
            } else {
              pendingList = undefined; // memoized twice, or out of order: leave it alone
            }
          }
          if (index < memo.length) memo[index] = v;
          else if (index === memo.length && ctx.sparseMemo === undefined) memo.push(v);
          else {
            // Out of order: kept aside, so that a huge index allocates nothing.
            if (ctx.sparseMemo === undefined) ctx.sparseMemo = new Map();
            ctx.sparseMemo.set(index, v);
          }
          break;
        }
        case 0x68: // BINGET
        case 0x6a: // LONG_BINGET
        case 0x67: {
          // GET
          let index: number;
          if (op === 0x68) {
            if (pos >= end) throw truncated(opPos, op, 1, 0);
            index = bytes[pos++] as number;
          } else if (op === 0x6a) {
            if (pos + 4 > end) throw truncated(opPos, op, 4, end - pos);
            index = u32(bytes, pos);
            pos += 4;
          } else {
            const nl = lineEnd(bytes, pos, opPos, op);
            index = parseIndex(decodeLatin1(bytes, pos, nl), opPos, op);
            pos = nl + 1;
          }
          let v = index < memo.length ? memo[index] : ctx.sparseMemo?.get(index);
          if (v === undefined) throw bad(opPos, op, `the memo has no entry ${index}`);
          if (v === pendingList) pendingList = undefined;
          let d = 0;
          if (typeof v === "object" && v !== null && isContainer(v)) {
            if (ctx.replaced !== undefined) v = ctx.replaced.get(v) ?? v;
            ctx.aliased = true;
            d = 1; // the real depth is measured once the value is complete
          }
          stack[sp] = v;
          depths[sp++] = d;
          break;
        }

        // ---- objects: recorded, never built ----
        case 0x63: // GLOBAL
        case 0x69: {
          // INST
          const nl1 = lineEnd(bytes, pos, opPos, op);
          const module = decodeUtf8(bytes, pos, nl1);
          const nl2 = lineEnd(bytes, nl1 + 1, opPos, op);
          const name = decodeUtf8(bytes, nl1 + 1, nl2);
          if (module === undefined || name === undefined) {
            throw bad(opPos, op, "its module or name is not valid UTF-8");
          }
          pos = nl2 + 1;
          const g = findClass(module, name, proto);
          if (op === 0x63) {
            stack[sp] = g;
            depths[sp++] = 0;
            break;
          }
          const m = marks.pop();
          if (m === undefined) throw noMark(opPos, op);
          fence = marks.length > 0 ? (marks[marks.length - 1] as number) : 0;
          let d = 0;
          for (let i = m; i < sp; i++) if ((depths[i] as number) > d) d = depths[i] as number;
          d += 2;
          if (d > maxDepth) throw tooDeep(opPos, op, maxDepth);
          const args = asTuple(stack.slice(m, sp));
          sp = m;
          stack[sp] = new PyObject({ kind: "obj", callable: g, args });
          depths[sp++] = d;
          break;
        }
        case 0x6f: {
          // OBJ
          const m = marks.pop();
          if (m === undefined) throw noMark(opPos, op);
          fence = marks.length > 0 ? (marks[marks.length - 1] as number) : 0;
          if (sp - m < 1) throw underflow(opPos, op);
          let d = 0;
          for (let i = m; i < sp; i++) if ((depths[i] as number) > d) d = depths[i] as number;
          d += 2;
          if (d > maxDepth) throw tooDeep(opPos, op, maxDepth);
          const items = stack.slice(m, sp);
          sp = m;
          const cls = items[0];
          if (!(cls instanceof PyGlobal || cls instanceof PyObject)) {
            throw bad(opPos, op, `its class is ${describe(cls)}, not a class`);
          }
          stack[sp] = new PyObject({ kind: "obj", callable: cls, args: asTuple(items.slice(1)) });
          depths[sp++] = d;
          break;
        }
        case 0x93: {
          // STACK_GLOBAL
          const at = sp - 2;
          if (at < fence) throw underflow(opPos, op);
          const module = stack[at];
          const name = stack[at + 1];
          if (typeof module !== "string" || typeof name !== "string") {
            throw bad(opPos, op, "its module and name must be str");
          }
          sp = at;
          stack[sp] = findClass(module, name, proto);
          depths[sp++] = 0;
          break;
        }
        case 0x52: // REDUCE
        case 0x81: {
          // NEWOBJ
          const at = sp - 2;
          if (at < fence) throw underflow(opPos, op);
          const callable = stack[at];
          const args = stack[at + 1];
          if (!isTupleValue(args))
            throw bad(opPos, op, `its arguments are ${describe(args)}, not a tuple`);
          if (!(callable instanceof PyGlobal || callable instanceof PyObject)) {
            throw bad(opPos, op, `it calls ${describe(callable)}, which is not callable`);
          }
          const d = Math.max(depths[at] as number, depths[at + 1] as number) + 1;
          if (d > maxDepth) throw tooDeep(opPos, op, maxDepth);
          let value: unknown = NOT_KNOWN;
          if (op === 0x52 && callable instanceof PyGlobal) value = knownReduce(callable, args, ctx);
          if (value === OVER_BUDGET) throw overBudget(opPos, op);
          if (value === NOT_KNOWN) {
            value = new PyObject({ kind: op === 0x52 ? "reduce" : "newobj", callable, args });
          }
          sp = at;
          stack[sp] = value;
          depths[sp++] = d;
          break;
        }
        case 0x92: {
          // NEWOBJ_EX
          const at = sp - 3;
          if (at < fence) throw underflow(opPos, op);
          const cls = stack[at];
          const args = stack[at + 1];
          const kwargs = stack[at + 2];
          if (!isTupleValue(args))
            throw bad(opPos, op, `its arguments are ${describe(args)}, not a tuple`);
          if (!isPlainDict(kwargs))
            throw bad(opPos, op, "its keyword arguments are not a dict of str keys");
          if (!(cls instanceof PyGlobal || cls instanceof PyObject)) {
            throw bad(opPos, op, `its class is ${describe(cls)}, not a class`);
          }
          const d =
            Math.max(depths[at] as number, depths[at + 1] as number, depths[at + 2] as number) + 1;
          if (d > maxDepth) throw tooDeep(opPos, op, maxDepth);
          sp = at;
          stack[sp] = new PyObject({ kind: "newobj_ex", callable: cls, args, kwargs });
          depths[sp++] = d;
          break;
        }
        case 0x62: {
          // BUILD
          const at = sp - 2;
          if (at < fence) throw underflow(opPos, op);
          const target = stack[at];
          if (!(target instanceof PyObject)) {
            throw bad(
              opPos,
              op,
              `it sets state on ${describe(target)}; only objects built by a callable take state`,
            );
          }
          if (target.state !== undefined) throw bad(opPos, op, "it sets an object's state twice");
          target.state = stack[at + 1];
          const array = numpyBuild(target, target.state, ctx);
          if (array === BUDGET_SPENT) throw overBudget(opPos, op);
          if (array !== undefined) {
            // A numpy array: the typed array replaces the recipe, here and in the memo.
            stack[at] = array;
            if (ctx.replaced === undefined) ctx.replaced = new Map();
            ctx.replaced.set(target, array);
          }
          const d = (depths[at + 1] as number) + 1;
          sp = at + 1;
          if (d > (depths[at] as number)) {
            if (d > maxDepth) throw tooDeep(opPos, op, maxDepth);
            depths[at] = d;
          }
          break;
        }

        // ---- protocol 0 text opcodes ----
        case 0x49: // INT
        case 0x4c: {
          // LONG
          const nl = lineEnd(bytes, pos, opPos, op);
          const text = decodeLatin1(bytes, pos, nl);
          pos = nl + 1;
          stack[sp] =
            op === 0x49 ? parseIntOpcode(text, opPos, op) : parseLongOpcode(text, opPos, op);
          depths[sp++] = 0;
          break;
        }
        case 0x46: {
          // FLOAT
          const nl = lineEnd(bytes, pos, opPos, op);
          stack[sp] = parseFloatText(decodeLatin1(bytes, pos, nl), opPos, op);
          depths[sp++] = 0;
          pos = nl + 1;
          break;
        }
        case 0x53: {
          // STRING (Python 2 str, quoted and escaped): decoded as Latin-1 text
          const nl = lineEnd(bytes, pos, opPos, op);
          const q = bytes[pos];
          if (nl - pos < 2 || (q !== 0x27 && q !== 0x22) || bytes[nl - 1] !== q) {
            throw bad(opPos, op, "its argument must be quoted");
          }
          const s = escapeDecode(bytes, pos + 1, nl - 1);
          if (s === undefined) throw bad(opPos, op, "its argument has an invalid escape");
          pos = nl + 1;
          stack[sp] = s;
          depths[sp++] = 0;
          break;
        }
        case 0x56: {
          // UNICODE (raw-unicode-escape)
          const nl = lineEnd(bytes, pos, opPos, op);
          const s = rawUnicodeEscapeDecode(bytes, pos, nl);
          if (s === undefined)
            throw bad(opPos, op, "its argument has an invalid \\u or \\U escape");
          stack[sp] = s;
          depths[sp++] = 0;
          pos = nl + 1;
          break;
        }

        // ---- framing and the rest ----
        case 0x80: {
          // PROTO
          if (pos >= end) throw truncated(opPos, op, 1, 0);
          proto = bytes[pos++] as number;
          if (proto > 5)
            throw bad(opPos, op, `protocol ${proto} is newer than this codec reads (0 to 5)`);
          break;
        }
        case 0x95: {
          // FRAME: optional for readers; only its length is checked
          if (pos + 8 > end) throw truncated(opPos, op, 8, end - pos);
          const n = readU64(bytes, pos);
          pos += 8;
          if (n > end - pos) throw tooLong(opPos, op, n, end - pos);
          break;
        }
        case 0x98: {
          // READONLY_BUFFER: only affects out-of-band buffers, which never get here
          if (sp <= fence) throw underflow(opPos, op);
          break;
        }
        case 0x2e: {
          // STOP
          if (sp <= fence) throw underflow(opPos, op);
          const result = stack[--sp];
          if (!ctx.aliased) return result;
          try {
            return finishGraph(result, ctx.replaced, maxDepth);
          } catch (error) {
            if (error instanceof GraphTooDeep) throw tooDeep(opPos, op, maxDepth);
            throw error;
          }
        }
        case 0x97: // NEXT_BUFFER
          throw bad(
            opPos,
            op,
            "it refers to an out-of-band buffer",
            "This codec reads in-band pickles only: pickle without buffer_callback.",
          );
        case 0x82: // EXT1
        case 0x83: // EXT2
        case 0x84: // EXT4
          throw bad(
            opPos,
            op,
            "it uses the copyreg extension registry",
            "This codec does not support extension codes: unregister them (copyreg.remove_extension) before pickling.",
          );
        case 0x50: // PERSID
        case 0x51: // BINPERSID
          throw bad(
            opPos,
            op,
            "it refers to a persistent id",
            "This codec does not support persistent ids: pickle without persistent_id.",
          );
        default:
          throw bad(opPos, op, "it is not a pickle opcode");
      }
    }
  } catch (error) {
    if (error instanceof RangeError) {
      // An allocation limit (a BigInt or array too large): still the input's fault.
      throw bad(opPos, op, `it exceeds a JavaScript limit (${error.message})`);
    }
    throw error;
  }
}
