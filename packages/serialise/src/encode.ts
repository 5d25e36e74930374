import { SheepdogError } from "@sheepdog/contracts";
import { PickleEncodeError } from "./errors.js";
import {
  IMPORT_MAPPING,
  NAME_MAPPING,
  REVERSE_IMPORT_MAPPING,
  REVERSE_NAME_MAPPING,
} from "./internal/compat-names.js";
import { describeValue, findPath } from "./internal/describe.js";
import { ndarrayRecipe } from "./internal/numpy.js";
import {
  ADDITEMS,
  APPEND,
  APPENDS,
  BINBYTES,
  BINBYTES8,
  BINFLOAT,
  BINGET,
  BININT,
  BININT1,
  BININT2,
  BINPUT,
  BINUNICODE,
  BUILD,
  BYTEARRAY8,
  EMPTY_DICT,
  EMPTY_LIST,
  EMPTY_SET,
  EMPTY_TUPLE,
  FRAME,
  FROZENSET,
  GLOBAL,
  LONG_BINGET,
  LONG_BINPUT,
  LONG1,
  LONG4,
  MARK,
  MEMOIZE,
  NEWFALSE,
  NEWOBJ,
  NEWOBJ_EX,
  NEWTRUE,
  NONE,
  OBJ,
  POP,
  POP_MARK,
  PROTO,
  REDUCE,
  SETITEM,
  SETITEMS,
  SHORT_BINBYTES,
  SHORT_BINUNICODE,
  STACK_GLOBAL,
  STOP,
  TUPLE,
  TUPLE1,
} from "./internal/opcodes.js";
import { scalarTuplePickle } from "./internal/scalar-tuple.js";
import { source } from "./internal/source.js";
import { writeUtf8 } from "./internal/utf8.js";
import {
  asTuple,
  byteArrayMarker,
  frozenSetMarker,
  isTuple,
  kindMarker,
  type NdArray,
  ndarrayMarker,
  PyGlobal,
  PyObject,
  tuple,
  tupleMarker,
} from "./values.js";

/** The pickle protocols `encode` writes. */
export const pickleProtocols = [2, 3, 4, 5] as const;

/** A pickle protocol `encode` writes: 2 and 3 for old Pythons, 5 for in-band bytearrays. */
export type PickleProtocol = (typeof pickleProtocols)[number];

/** The protocol `encode` writes unless told otherwise. */
export const DEFAULT_PROTOCOL: PickleProtocol = 4;

/** The nesting `encode` and `decode` accept unless told otherwise. */
export const DEFAULT_MAX_DEPTH = 1000;

/** Options of {@link encode}. */
export interface EncodeOptions {
  /**
   * The pickle protocol to write. Python 3.0+ reads 2 and 3, Python 3.4+ reads 4, Python 3.8+
   * reads 5.
   * @default 4
   */
  protocol?: PickleProtocol;
  /**
   * The deepest nesting of containers to encode; deeper values (and cycles made only of tuples,
   * which Python cannot rebuild) fail with `PICKLE_ENCODE`.
   * @default 1000
   */
  maxDepth?: number;
}

const BATCH = 1000;
const INITIAL_SIZE = 64 * 1024;

const GETATTR = new PyGlobal("builtins", "getattr");
const PARTIAL = new PyGlobal("functools", "partial");
const BUILTIN_SET = new PyGlobal("builtins", "set");
const BUILTIN_FROZENSET = new PyGlobal("builtins", "frozenset");
const BUILTIN_BYTEARRAY = new PyGlobal("builtins", "bytearray");
const BUILTIN_BYTES = new PyGlobal("builtins", "bytes");
const CODECS_ENCODE = new PyGlobal("_codecs", "encode");

/** Thrown inside the encoder; turned into a PickleEncodeError with the value's path. */
class EncodeFailure {
  constructor(
    readonly value: unknown,
    readonly message: string,
  ) {}
}

type Indexable = Record<PropertyKey, unknown>;

/**
 * One pickler. A single instance is kept and reused between calls (a fresh one only for a
 * re-entrant call): besides saving allocations, this keeps V8's hidden class for it alive, so
 * that a garbage collection between calls does not throw away the optimized code.
 */
class Encoder {
  /** Owned and reused: small pickles are written here, then copied out. */
  readonly home = new Uint8Array(INITIAL_SIZE);
  buf: Uint8Array = this.home;
  view: DataView = new DataView(this.home.buffer);
  pos = 0;
  protocol = DEFAULT_PROTOCOL as number;
  maxDepth = DEFAULT_MAX_DEPTH;
  memo = new Map<unknown, number>();
  keyMemo = new Map<string, number>();
  memoCount = 0;
  /**
   * Containers memoized and still being filled (lists, dicts, Maps, sets from protocol 4): CPython
   * sees them half-built until their items are written.
   */
  open: object[] = [];
  /** Recipes whose construction is being written: where `open` stood when each began. */
  building = new Map<PyObject, number>();
  /** Recipes written a second time inside their own constructor arguments. */
  reentered = new Set<PyObject>();
  /**
   * While a recipe is written again inside its own arguments: containers at `open[copyFrom]` and
   * above are written as fresh copies (see {@link Encoder.saveRecipe}); -1 otherwise.
   */
  copyFrom = -1;
  /** The recipe written again inside its own arguments, while `copyFrom` is set. */
  copyFor: PyObject | undefined = undefined;
  /** The memo index of each fresh copy written since `copyFrom` was set. */
  copies = new Map<object, number>();

  begin(protocol: number, maxDepth: number): void {
    this.protocol = protocol;
    this.maxDepth = maxDepth;
    this.pos = 0;
    this.memoCount = 0;
    this.open.length = 0;
    this.copyFrom = -1;
    this.copyFor = undefined;
  }

  /** Drops everything that refers to the caller's values or to a grown buffer. */
  finish(): void {
    if (this.buf !== this.home) {
      this.buf = this.home;
      this.view = new DataView(this.home.buffer);
    }
    // clear() allocates a new table, even for an empty collection, and in old space when the
    // collection is old (as this encoder soon is): a million small pickles would leave a million
    // tables there, all garbage. A new Map starts young and dies young.
    if (this.memo.size > 0) this.memo = new Map();
    if (this.keyMemo.size > 0) this.keyMemo = new Map();
    if (this.open.length > 0) this.open.length = 0;
    if (this.building.size > 0) this.building.clear();
    if (this.reentered.size > 0) this.reentered.clear();
    if (this.copies.size > 0) this.copies.clear();
  }

  /** The pickle, in an array of its own. */
  result(): Uint8Array {
    const { buf, pos } = this;
    if (buf === this.home) return buf.slice(0, pos);
    // A buffer grown for this call: keep it when little is wasted, else copy out.
    if (buf.length - pos <= Math.max(4096, pos >>> 3)) return buf.subarray(0, pos);
    return buf.slice(0, pos);
  }

  reserve(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  grow(n: number): void {
    const need = this.pos + n;
    let size = this.buf.length * 2;
    // A single large write (a big bytes value) gets a buffer that just fits, so that its
    // contents are copied once, straight into the buffer that is returned.
    if (size < need) size = need + INITIAL_SIZE;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }

  op(code: number): void {
    if (this.pos >= this.buf.length) this.grow(1);
    this.buf[this.pos++] = code;
  }

  u32(n: number): void {
    this.view.setUint32(this.pos, n, true);
    this.pos += 4;
  }

  u64(n: number): void {
    this.view.setUint32(this.pos, n >>> 0, true);
    this.view.setUint32(this.pos + 4, Math.floor(n / 0x100000000), true);
    this.pos += 8;
  }

  fail(value: unknown, message: string): EncodeFailure {
    return new EncodeFailure(value, message);
  }

  // ---- memo ----

  memoize(obj: unknown): void {
    const index = this.memoCount++;
    this.memo.set(obj, index);
    this.putIndex(index);
  }

  putIndex(index: number): void {
    if (this.protocol >= 4) {
      this.op(MEMOIZE);
    } else if (index < 256) {
      this.reserve(2);
      this.buf[this.pos++] = BINPUT;
      this.buf[this.pos++] = index;
    } else {
      this.reserve(5);
      this.buf[this.pos++] = LONG_BINPUT;
      this.u32(index);
    }
  }

  get(index: number): void {
    if (index < 256) {
      this.reserve(2);
      this.buf[this.pos++] = BINGET;
      this.buf[this.pos++] = index;
    } else {
      this.reserve(5);
      this.buf[this.pos++] = LONG_BINGET;
      this.u32(index);
    }
  }

  /**
   * After building an object that may have been memoized meanwhile (a cycle through its
   * arguments), fetch the memoized one instead, as CPython's save_reduce does. Returns true then.
   */
  memoizeOrFetch(obj: unknown, pops: number, popMark: boolean): boolean {
    const index = this.memo.get(obj);
    if (index === undefined) {
      this.memoize(obj);
      return false;
    }
    if (popMark) this.op(POP_MARK);
    for (let i = 0; i < pops; i++) this.op(POP);
    this.get(index);
    return true;
  }

  // ---- values ----

  save(v: unknown, depth: number): void {
    switch (typeof v) {
      case "number":
        this.saveNumber(v);
        return;
      case "string":
        this.saveString(v);
        return;
      case "boolean":
        this.op(v ? NEWTRUE : NEWFALSE);
        return;
      case "object":
        if (v === null) this.op(NONE);
        else this.saveObject(v, depth);
        return;
      case "bigint":
        this.saveBigInt(v);
        return;
      case "undefined":
        throw this.fail(v, "undefined has no Python equivalent; use null for None");
      default:
        throw this.fail(v, `a ${typeof v} has no Python equivalent`);
    }
  }

  saveNumber(v: number): void {
    if ((v | 0) === v) {
      if (v === 0 && 1 / v < 0) {
        this.saveFloat(v);
        return;
      }
      if (this.pos + 5 > this.buf.length) this.grow(5);
      const buf = this.buf;
      if (v >= 0 && v < 0x100) {
        buf[this.pos++] = BININT1;
        buf[this.pos++] = v;
      } else if (v >= 0 && v < 0x10000) {
        buf[this.pos++] = BININT2;
        buf[this.pos++] = v & 0xff;
        buf[this.pos++] = v >>> 8;
      } else {
        const p = this.pos;
        buf[p] = BININT;
        buf[p + 1] = v & 0xff;
        buf[p + 2] = (v >> 8) & 0xff;
        buf[p + 3] = (v >> 16) & 0xff;
        buf[p + 4] = (v >> 24) & 0xff;
        this.pos = p + 5;
      }
    } else if (Number.isSafeInteger(v)) {
      this.saveLong(BigInt(v));
    } else {
      this.saveFloat(v);
    }
  }

  saveFloat(v: number): void {
    this.reserve(9);
    this.buf[this.pos++] = BINFLOAT;
    this.view.setFloat64(this.pos, v, false);
    this.pos += 8;
  }

  saveBigInt(v: bigint): void {
    if (v >= -0x80000000n && v <= 0x7fffffffn) this.saveNumber(Number(v));
    else this.saveLong(v);
  }

  /** LONG1 / LONG4: little-endian two's complement in as few bytes as possible, as CPython. */
  saveLong(v: bigint): void {
    const negative = v < 0n;
    // For a negative v, write the bytes of ~v (= -v - 1, not negative) inverted.
    const magnitude = negative ? ~v : v;
    const hex = magnitude === 0n ? "" : magnitude.toString(16);
    const bits = hex.length === 0 ? 0 : (hex.length - 1) * 4 + bitLength(hex.charCodeAt(0));
    const n = v === 0n ? 0 : (bits >> 3) + 1;
    this.reserve(n + 5);
    if (n < 256) {
      this.buf[this.pos++] = LONG1;
      this.buf[this.pos++] = n;
    } else {
      this.buf[this.pos++] = LONG4;
      this.u32(n);
    }
    const buf = this.buf;
    const flip = negative ? 0xff : 0;
    let h = hex.length;
    for (let i = 0; i < n; i++) {
      let byte = 0;
      if (h >= 2) {
        byte = Number.parseInt(hex.slice(h - 2, h), 16);
        h -= 2;
      } else if (h === 1) {
        byte = Number.parseInt(hex.slice(0, 1), 16);
        h = 0;
      }
      buf[this.pos++] = byte ^ flip;
    }
  }

  saveString(s: string): void {
    const len = s.length;
    if (this.protocol >= 4 && len <= 85) {
      // At most 255 bytes of UTF-8: SHORT_BINUNICODE with a one-byte length.
      this.reserve(2 + len * 3);
      const start = this.pos + 2;
      const stop = writeUtf8(s, this.buf, start);
      this.buf[this.pos] = SHORT_BINUNICODE;
      this.buf[this.pos + 1] = stop - start;
      this.pos = stop;
      return;
    }
    this.reserve(5 + len * 3);
    const start = this.pos + 5;
    const stop = writeUtf8(s, this.buf, start);
    this.buf[this.pos] = BINUNICODE;
    this.view.setUint32(this.pos + 1, stop - start, true);
    this.pos = stop;
  }

  /** A dict key: equal strings share one memo entry, as interned keys do in CPython. */
  saveKey(key: string): void {
    const index = this.keyMemo.get(key);
    if (index !== undefined) {
      this.get(index);
      return;
    }
    this.saveString(key);
    const next = this.memoCount++;
    this.keyMemo.set(key, next);
    this.putIndex(next);
  }

  saveObject(v: object, depth: number): void {
    const index = this.memo.get(v);
    if (index !== undefined) {
      if (this.copyFrom >= 0 && this.copiesOpen(v)) this.saveCopy(v, depth);
      else this.get(index);
      return;
    }
    if (depth >= this.maxDepth) {
      throw this.fail(
        v,
        `it is nested deeper than maxDepth (${this.maxDepth}), or sits in a cycle made only of tuples, frozensets or opaque objects, which Python cannot rebuild. Raise the maxDepth option if the nesting is intended`,
      );
    }
    const next = depth + 1;
    if (Array.isArray(v)) {
      if ((v as unknown as Indexable)[tupleMarker] === true) this.saveTuple(v, next);
      else this.saveList(v, next);
      return;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto === Object.prototype || proto === null) {
      this.saveDict(v as Indexable, next);
      return;
    }
    if (v instanceof Uint8Array) {
      if ((v as unknown as Indexable)[byteArrayMarker] === true) this.saveByteArray(v);
      else if ((v as unknown as Indexable)[ndarrayMarker] !== undefined) this.saveNdArray(v);
      else this.saveBytes(v);
      return;
    }
    if (v instanceof Map) {
      this.saveMap(v, next);
      return;
    }
    if (v instanceof Set) {
      if ((v as unknown as Indexable)[frozenSetMarker] === true) this.saveFrozenSet(v, next);
      else this.saveSet(v, next);
      return;
    }
    switch ((v as Indexable)[kindMarker]) {
      case "float":
        this.saveFloat((v as { value: number }).value);
        return;
      case "global":
        this.saveGlobal(v as PyGlobal);
        return;
      case "object":
        this.saveRecipe(v as PyObject, next);
        return;
      case "function":
        throw this.fail(
          v,
          "a py function is not data: pass it as the function to map, or in the namespace",
        );
    }
    if (ArrayBuffer.isView(v) && (v as unknown as Indexable)[ndarrayMarker] !== undefined) {
      this.saveNdArray(v);
      return;
    }
    throw this.fail(v, unpicklableReason(v));
  }

  /**
   * A numpy array (see {@link NdArray}) as numpy's pickle built it: `_reconstruct` then BUILD
   * with its shape, dtype, memory order and bytes, or `_frombuffer` (numpy 1 and 2 load both at
   * every protocol). Memoized after its construction, as numpy's pickles are.
   */
  saveNdArray(v: object): void {
    const recipe = ndarrayRecipe(v as NdArray);
    this.save(recipe.callable, 1);
    this.saveArgs(recipe.args, 1);
    this.op(REDUCE);
    this.memoize(v);
    if (recipe.state === undefined) return;
    this.save(recipe.state, 1);
    this.op(BUILD);
  }

  saveList(list: unknown[], depth: number): void {
    this.op(EMPTY_LIST);
    this.memoize(list);
    this.open.push(list);
    this.appends(list, depth);
    this.open.pop();
  }

  /**
   * While a recipe is written again inside its own arguments: whether the memoized `v` is written
   * as a fresh copy ({@link Encoder.saveCopy}) rather than fetched. Only containers still being
   * filled since the recipe began are; and not one that holds the recipe itself, which cannot have
   * been among its items when the recipe was constructed: CPython's pickler fetched it half-filled
   * then (a K whose argument is the set {K}), and so does this.
   */
  copiesOpen(v: object): boolean {
    return this.open.lastIndexOf(v) >= this.copyFrom && !holds(v, this.copyFor);
  }

  /**
   * A fresh copy of a container that is still being filled, for a recipe written again inside its
   * own arguments. CPython's pickler does the same: the arguments of set, frozenset and dict
   * reductions and of copyreg._reconstructor are new lists and dicts each time they are saved
   * (`list(self)`), so the construction written inside the cycle sees them whole.
   */
  saveCopy(v: object, depth: number): void {
    const index = this.copies.get(v);
    if (index !== undefined) {
      this.get(index);
      return;
    }
    if (depth >= this.maxDepth)
      throw this.fail(v, `it is nested deeper than maxDepth (${this.maxDepth})`);
    const copy = this.memoCount++;
    this.copies.set(v, copy);
    if (Array.isArray(v)) {
      this.op(EMPTY_LIST);
      this.putIndex(copy);
      this.appends(v, depth + 1);
    } else if (v instanceof Set) {
      this.op(EMPTY_SET);
      this.putIndex(copy);
      this.setItems(v, depth + 1, ADDITEMS);
    } else {
      this.op(EMPTY_DICT);
      this.putIndex(copy);
      if (v instanceof Map) this.mapItems(v, depth + 1);
      else this.dictItems(v as Indexable, depth + 1);
    }
  }

  /** APPEND / APPENDS in batches of 1000, as CPython writes them. */
  appends(items: unknown[], depth: number): void {
    const n = items.length;
    for (let i = 0; i < n; i += BATCH) {
      const stop = Math.min(i + BATCH, n);
      if (stop - i === 1) {
        this.save(items[i], depth);
        this.op(APPEND);
      } else {
        this.op(MARK);
        this.saveItems(items, i, stop, depth);
        this.op(APPENDS);
      }
    }
  }

  /**
   * Writes `items[from, to)`. Runs of numbers, the common case of numeric data, are written by an
   * inlined loop over a local buffer position; anything else goes through save().
   */
  saveItems(items: unknown[], from: number, to: number, depth: number): void {
    let j = from;
    while (j < to) {
      // Room for the rest of the batch if it is all numbers (9 bytes each at most).
      this.reserve((to - j) * 9);
      const buf = this.buf;
      const view = this.view;
      let p = this.pos;
      for (; j < to; j++) {
        const v = items[j];
        if (typeof v !== "number") break;
        if ((v | 0) === v && (v !== 0 || 1 / v > 0)) {
          if (v >= 0 && v < 0x100) {
            buf[p] = BININT1;
            buf[p + 1] = v;
            p += 2;
          } else if (v >= 0 && v < 0x10000) {
            buf[p] = BININT2;
            buf[p + 1] = v & 0xff;
            buf[p + 2] = v >>> 8;
            p += 3;
          } else {
            buf[p] = BININT;
            buf[p + 1] = v & 0xff;
            buf[p + 2] = (v >> 8) & 0xff;
            buf[p + 3] = (v >> 16) & 0xff;
            buf[p + 4] = (v >> 24) & 0xff;
            p += 5;
          }
        } else if (Number.isSafeInteger(v) && v !== 0) {
          break; // beyond 32 bits: LONG1, through save()
        } else {
          buf[p] = BINFLOAT;
          view.setFloat64(p + 1, v, false);
          p += 9;
        }
      }
      this.pos = p;
      if (j < to) this.save(items[j++], depth);
    }
  }

  saveTuple(t: unknown[], depth: number): void {
    const n = t.length;
    if (n === 0) {
      this.op(EMPTY_TUPLE);
      return;
    }
    if (n <= 3) {
      for (let i = 0; i < n; i++) this.save(t[i], depth);
      const index = this.memo.get(t);
      if (index !== undefined) {
        // The tuple was memoized while its items were written (a cycle through a list or dict).
        for (let i = 0; i < n; i++) this.op(POP);
        this.get(index);
        return;
      }
      this.op(TUPLE1 + n - 1);
      this.memoize(t);
      return;
    }
    this.op(MARK);
    for (let i = 0; i < n; i++) this.save(t[i], depth);
    const index = this.memo.get(t);
    if (index !== undefined) {
      this.op(POP_MARK);
      this.get(index);
      return;
    }
    this.op(TUPLE);
    this.memoize(t);
  }

  /** Writes the items of a recipe's arguments on the stack, as OBJ takes them. */
  saveArgItems(args: unknown, depth: number): void {
    if (!Array.isArray(args)) throw this.fail(args, "the args of a PyObject must be an array");
    if (depth >= this.maxDepth)
      throw this.fail(args, `it is nested deeper than maxDepth (${this.maxDepth})`);
    for (let i = 0; i < args.length; i++) this.save(args[i], depth + 1);
  }

  /** Writes an array as a tuple that is not memoized (the arguments of a recipe). */
  saveArgs(args: unknown, depth: number): void {
    if (!Array.isArray(args)) {
      throw this.fail(args, "the args of a PyObject must be an array");
    }
    if ((args as unknown as Indexable)[tupleMarker] === true) {
      this.save(args, depth);
      return;
    }
    if (depth >= this.maxDepth)
      throw this.fail(args, `it is nested deeper than maxDepth (${this.maxDepth})`);
    const n = args.length;
    if (n === 0) {
      this.op(EMPTY_TUPLE);
    } else if (n <= 3) {
      for (let i = 0; i < n; i++) this.save(args[i], depth + 1);
      this.op(TUPLE1 + n - 1);
    } else {
      this.op(MARK);
      for (let i = 0; i < n; i++) this.save(args[i], depth + 1);
      this.op(TUPLE);
    }
  }

  saveDict(obj: Indexable, depth: number): void {
    this.op(EMPTY_DICT);
    this.memoize(obj);
    this.open.push(obj);
    this.dictItems(obj, depth);
    this.open.pop();
  }

  dictItems(obj: Indexable, depth: number): void {
    const keys = Object.keys(obj);
    const n = keys.length;
    for (let i = 0; i < n; i += BATCH) {
      const stop = Math.min(i + BATCH, n);
      const many = stop - i > 1;
      if (many) this.op(MARK);
      for (let j = i; j < stop; j++) {
        const key = keys[j] as string;
        this.saveKey(key);
        this.save(obj[key], depth);
      }
      this.op(many ? SETITEMS : SETITEM);
    }
  }

  saveMap(map: Map<unknown, unknown>, depth: number): void {
    this.op(EMPTY_DICT);
    this.memoize(map);
    this.open.push(map);
    this.mapItems(map, depth);
    this.open.pop();
  }

  mapItems(map: Map<unknown, unknown>, depth: number): void {
    let count = 0;
    for (const [key, value] of map) {
      if (count % BATCH === 0) {
        if (count > 0) this.op(SETITEMS);
        this.op(MARK);
      }
      this.checkHashable(key, "dict key");
      if (typeof key === "string") this.saveKey(key);
      else this.save(key, depth);
      this.save(value, depth);
      count++;
    }
    if (count > 0) this.op(SETITEMS);
  }

  saveSet(set: Set<unknown>, depth: number): void {
    if (this.protocol < 4) {
      // CPython: save_reduce(set, (list(obj),), obj=obj)
      this.saveGlobal(BUILTIN_SET);
      this.op(EMPTY_LIST);
      this.setItems(set, depth, APPENDS);
      this.op(TUPLE1);
      this.op(REDUCE);
      this.memoizeOrFetch(set, 1, false);
      return;
    }
    this.op(EMPTY_SET);
    this.memoize(set);
    this.open.push(set);
    this.setItems(set, depth, ADDITEMS);
    this.open.pop();
  }

  setItems(set: Set<unknown>, depth: number, opcode: number): void {
    let count = 0;
    for (const item of set) {
      if (count % BATCH === 0) {
        if (count > 0) this.op(opcode);
        this.op(MARK);
      }
      this.checkHashable(item, "set element");
      this.save(item, depth);
      count++;
    }
    if (count > 0) this.op(opcode);
  }

  saveFrozenSet(set: Set<unknown>, depth: number): void {
    if (this.protocol < 4) {
      this.saveGlobal(BUILTIN_FROZENSET);
      if (set.size === 0) {
        this.op(EMPTY_TUPLE);
      } else {
        this.op(EMPTY_LIST);
        this.setItems(set, depth, APPENDS);
        this.op(TUPLE1);
      }
      this.op(REDUCE);
      this.memoizeOrFetch(set, 1, false);
      return;
    }
    this.op(MARK);
    for (const item of set) {
      this.checkHashable(item, "frozenset element");
      this.save(item, depth);
    }
    const index = this.memo.get(set);
    if (index !== undefined) {
      this.op(POP_MARK);
      this.get(index);
      return;
    }
    this.op(FROZENSET);
    this.memoize(set);
  }

  checkHashable(value: unknown, role: string): void {
    if (typeof value !== "object" || value === null) return;
    let reason: string | undefined;
    if (Array.isArray(value)) {
      if ((value as unknown as Indexable)[tupleMarker] !== true) {
        reason = `an array (a Python list) cannot be a ${role}; make it a tuple with tuple(...)`;
      }
    } else if (value instanceof Map) {
      reason = `a Map (a Python dict) cannot be a ${role}`;
    } else if (value instanceof Set) {
      if ((value as unknown as Indexable)[frozenSetMarker] !== true) {
        reason = `a Set (a Python set) cannot be a ${role}; use frozenset(...)`;
      }
    } else if (ArrayBuffer.isView(value)) {
      if ((value as unknown as Indexable)[byteArrayMarker] === true) {
        reason = `a bytearray cannot be a ${role}; use a plain Uint8Array (bytes)`;
      } else if ((value as unknown as Indexable)[ndarrayMarker] !== undefined) {
        reason = `a numpy array cannot be a ${role}`;
      }
    } else {
      const proto = Object.getPrototypeOf(value);
      if (proto === Object.prototype || proto === null) {
        reason = `an object (a Python dict) cannot be a ${role}`;
      }
    }
    if (reason !== undefined) throw this.fail(value, reason);
  }

  saveBytes(bytes: Uint8Array): void {
    const n = bytes.length;
    if (this.protocol < 3) {
      // CPython: bytes have no opcode before protocol 3.
      if (n === 0) {
        this.saveGlobal(BUILTIN_BYTES);
        this.op(EMPTY_TUPLE);
      } else {
        this.saveGlobal(CODECS_ENCODE);
        this.saveLatin1(bytes);
        this.saveString("latin1");
        this.op(TUPLE1 + 1);
      }
      this.op(REDUCE);
      this.memoizeOrFetch(bytes, 1, false);
      return;
    }
    this.rawBytes(bytes);
    this.memoize(bytes);
  }

  /** A bytes opcode with its data, not memoized. */
  rawBytes(bytes: Uint8Array): void {
    const n = bytes.length;
    if (this.protocol < 3) {
      this.saveGlobal(CODECS_ENCODE);
      this.saveLatin1(bytes);
      this.saveString("latin1");
      this.op(TUPLE1 + 1);
      this.op(REDUCE);
      return;
    }
    this.reserve(n + 9);
    if (n < 256) {
      this.buf[this.pos++] = SHORT_BINBYTES;
      this.buf[this.pos++] = n;
    } else if (n <= 0xffffffff) {
      this.buf[this.pos++] = BINBYTES;
      this.u32(n);
    } else if (this.protocol >= 4) {
      this.buf[this.pos++] = BINBYTES8;
      this.u64(n);
    } else {
      throw this.fail(bytes, "bytes longer than 4 GiB need protocol 4 or later");
    }
    this.buf.set(bytes, this.pos);
    this.pos += n;
  }

  /** The str that CPython writes for bytes before protocol 3: each byte one character. */
  saveLatin1(bytes: Uint8Array): void {
    const n = bytes.length;
    let size = n;
    for (let i = 0; i < n; i++) if ((bytes[i] as number) >= 0x80) size++;
    this.reserve(size + 5);
    this.buf[this.pos++] = BINUNICODE;
    this.u32(size);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) {
      const b = bytes[i] as number;
      if (b < 0x80) buf[p++] = b;
      else {
        buf[p++] = 0xc0 | (b >> 6);
        buf[p++] = 0x80 | (b & 0x3f);
      }
    }
    this.pos = p;
  }

  saveByteArray(bytes: Uint8Array): void {
    const n = bytes.length;
    if (this.protocol >= 5) {
      this.reserve(n + 9);
      this.buf[this.pos++] = BYTEARRAY8;
      this.u64(n);
      this.buf.set(bytes, this.pos);
      this.pos += n;
      this.memoize(bytes);
      return;
    }
    // CPython: save_reduce(bytearray, (bytes(obj),), obj=obj), or (bytearray, ()) when empty.
    this.saveGlobal(BUILTIN_BYTEARRAY);
    if (n === 0) {
      this.op(EMPTY_TUPLE);
    } else {
      this.rawBytes(bytes);
      this.op(TUPLE1);
    }
    this.op(REDUCE);
    this.memoizeOrFetch(bytes, 1, false);
  }

  saveGlobal(g: PyGlobal): void {
    const index = this.memo.get(g);
    if (index !== undefined) {
      this.get(index);
      return;
    }
    const { module, name } = g;
    if (
      typeof module !== "string" ||
      typeof name !== "string" ||
      module === "" ||
      name === "" ||
      module.includes("\n") ||
      name.includes("\n")
    ) {
      throw this.fail(g, "a PyGlobal needs a non-empty module and name without newlines");
    }
    if (this.protocol >= 4) {
      this.saveString(module);
      this.saveString(name);
      this.op(STACK_GLOBAL);
      this.memoize(g);
      return;
    }
    const dot = name.lastIndexOf(".");
    if (dot > 0) {
      // CPython before protocol 4: save_reduce(getattr, (parent, lastname)).
      this.saveGlobal(GETATTR);
      this.saveGlobal(new PyGlobal(module, name.slice(0, dot)));
      this.saveString(name.slice(dot + 1));
      this.op(TUPLE1 + 1);
      this.op(REDUCE);
      this.memoize(g);
      return;
    }
    const [m, n] = this.protocol < 3 ? python2Name(module, name) : [module, name];
    this.reserve(3 + (m.length + n.length) * 3);
    this.buf[this.pos++] = GLOBAL;
    this.pos = writeUtf8(m, this.buf, this.pos);
    this.buf[this.pos++] = 0x0a;
    this.pos = writeUtf8(n, this.buf, this.pos);
    this.buf[this.pos++] = 0x0a;
    this.memoize(g);
  }

  /**
   * A PyObject: its construction, then its items and state. An object in a cycle through its own
   * constructor arguments (a set subclass holding an object whose attribute is the set) is met
   * again while its arguments are written; as CPython's pickler does, it is then constructed there
   * from whole arguments (see {@link Encoder.saveCopy}), and the outer construction, once written,
   * is popped in favour of it. Met a third time, the cycle has no construction Python can run.
   */
  saveRecipe(o: PyObject, depth: number): void {
    const since = this.building.get(o);
    if (since === undefined) {
      this.building.set(o, this.open.length);
      this.construct(o, depth);
      this.building.delete(o);
    } else {
      if (this.reentered.has(o)) {
        throw this.fail(
          o,
          "it sits in a cycle through its own constructor arguments that Python cannot rebuild: each construction needs the object itself (a frozenset, and a set before protocol 4, is constructed from its items too). Break the cycle, or encode with protocol 4 or later if a set closes it",
        );
      }
      const { copyFrom, copyFor, copies } = this;
      this.reentered.add(o);
      this.copyFrom = since;
      this.copyFor = o;
      this.copies = new Map();
      this.construct(o, depth);
      this.copyFrom = copyFrom;
      this.copyFor = copyFor;
      this.copies = copies;
      this.reentered.delete(o);
    }
    if (this.memoizeOrFetch(o, 1, false)) return;
    this.fill(o, depth);
  }

  /** Writes how a PyObject is constructed: callable and arguments, then the opcode. */
  construct(o: PyObject, depth: number): void {
    switch (o.kind) {
      case "reduce":
        this.save(o.callable, depth);
        this.saveArgs(o.args, depth);
        this.op(REDUCE);
        break;
      case "newobj":
        this.save(o.callable, depth);
        this.saveArgs(o.args, depth);
        this.op(NEWOBJ);
        break;
      case "obj":
        // OBJ (protocol 1, read by every Python 3): CPython's rule for classic instances, which
        // calls __init__ only with arguments or __getinitargs__, applies when it loads.
        this.op(MARK);
        this.save(o.callable, depth);
        this.saveArgItems(o.args, depth);
        this.op(OBJ);
        break;
      case "newobj_ex":
        if (this.protocol >= 4) {
          this.save(o.callable, depth);
          this.saveArgs(o.args, depth);
          this.save(o.kwargs ?? {}, depth);
          this.op(NEWOBJ_EX);
        } else {
          // CPython before protocol 4: partial(cls.__new__, cls, *args, **kwargs)().
          const newFunc = new PyObject({ callable: GETATTR, args: [o.callable, "__new__"] });
          const kwargs =
            o.kwargs !== undefined && Object.keys(o.kwargs).length > 0 ? o.kwargs : null;
          const partial = new PyObject({
            callable: PARTIAL,
            args: [newFunc],
            state: tuple(newFunc, asTuple([o.callable, ...o.args]), kwargs, null),
          });
          this.save(partial, depth);
          this.op(EMPTY_TUPLE);
          this.op(REDUCE);
        }
        break;
      default:
        throw this.fail(o, `unknown PyObject kind "${String(o.kind)}"`);
    }
  }

  /** Writes a constructed PyObject's list items, dict items and state. */
  fill(o: PyObject, depth: number): void {
    if (o.listItems !== undefined) this.appends(o.listItems, depth);
    if (o.dictItems !== undefined) {
      const items = o.dictItems;
      const n = items.length;
      for (let i = 0; i < n; i += BATCH) {
        const stop = Math.min(i + BATCH, n);
        const many = stop - i > 1;
        if (many) this.op(MARK);
        for (let j = i; j < stop; j++) {
          const pair = items[j];
          if (!Array.isArray(pair) || pair.length !== 2) {
            throw this.fail(o, "PyObject dictItems must be [key, value] pairs");
          }
          this.save(pair[0], depth);
          this.save(pair[1], depth);
        }
        this.op(many ? SETITEMS : SETITEM);
      }
    }
    if (o.state !== undefined) {
      this.save(o.state, depth);
      this.op(BUILD);
    }
  }
}

/** Whether the container `c` holds `item` directly (as an item, a key or a value). */
function holds(c: object, item: unknown): boolean {
  if (Array.isArray(c)) return c.includes(item);
  if (c instanceof Set) return c.has(item);
  if (c instanceof Map) {
    if (c.has(item)) return true;
    for (const value of c.values()) if (value === item) return true;
    return false;
  }
  return Object.values(c).includes(item);
}

/** The name CPython's reader (find_class with fix_imports) gives a global written as `module.name`. */
function python3Name(module: string, name: string): [string, string] {
  const renamed = NAME_MAPPING.get(`${module}\n${name}`);
  if (renamed !== undefined) return renamed.split("\n") as [string, string];
  return [IMPORT_MAPPING.get(module) ?? module, name];
}

/**
 * The Python 2 name CPython writes for a global before protocol 3 (fix_imports), when CPython
 * reads it back as the same global. Some renamings lose the name (every OSError subclass becomes
 * exceptions.OSError, read back as OSError; _bz2 becomes bz2): those globals keep their Python 3
 * name, which Python 3 reads as it is.
 */
function python2Name(module: string, name: string): [string, string] {
  const renamed = REVERSE_NAME_MAPPING.get(`${module}\n${name}`);
  const [m, n] =
    renamed !== undefined
      ? (renamed.split("\n") as [string, string])
      : [REVERSE_IMPORT_MAPPING.get(module) ?? module, name];
  const back = python3Name(m, n);
  return back[0] === module && back[1] === name ? [m, n] : [module, name];
}

/** Bits needed for one hex digit (given as its character code). */
function bitLength(hexDigitCode: number): number {
  const d = hexDigitCode <= 0x39 ? hexDigitCode - 0x30 : (hexDigitCode | 0x20) - 0x57;
  return d >= 8 ? 4 : d >= 4 ? 3 : d >= 2 ? 2 : d >= 1 ? 1 : 0;
}

function unpicklableReason(v: object): string {
  if (v instanceof Date)
    return "a Date has no Python equivalent here; send v.toISOString() or v.getTime()";
  if (ArrayBuffer.isView(v)) {
    return `a ${v.constructor.name} is not bytes; send a Uint8Array (new Uint8Array(x.buffer, x.byteOffset, x.byteLength)), or a numpy array: ndarray(x, { shape })`;
  }
  if (v instanceof ArrayBuffer)
    return "an ArrayBuffer is not bytes; wrap it: new Uint8Array(buffer)";
  return `${describeValue(v)} is not a plain object, array, Map, Set, Uint8Array or value of this package`;
}

/**
 * Pickles a JavaScript value so that Python's `pickle.loads` rebuilds it.
 *
 * Mapping: `null` -> None, boolean -> bool, a number that is a safe integer (not -0) -> int, any
 * other number -> float (NaN and ±Infinity included; wrap with {@link pyFloat} to force a float),
 * bigint -> int, string -> str, Uint8Array -> bytes, {@link bytearray} -> bytearray, Array -> list,
 * {@link tuple} -> tuple, plain object -> dict with str keys, Map -> dict, Set -> set,
 * {@link frozenset} -> frozenset, {@link PyGlobal} / {@link PyObject} -> the Python object they
 * describe. Shared and recursive references are kept. The result is a new `Uint8Array` owned by
 * the caller.
 *
 * @throws PickleEncodeError (code `PICKLE_ENCODE`) naming where the unpicklable value sits.
 *
 * @example
 * ```ts
 * const bytes = encode({ xs: [1, 2.5, 2n ** 64n], t: tuple("a", null) }, { protocol: 4 });
 * ```
 */
export function encode(value: unknown, options: EncodeOptions = {}): Uint8Array {
  return (isTuple(value) && shortTuple(value, options)) || encodeValue(value, options);
}

/**
 * The pickle of `items` as a Python tuple, as `encode(tuple(...items))` writes it, leaving the
 * array as it is (not marked as a tuple): what an argument tuple is.
 *
 * @example
 * ```ts
 * const args = [1, "two"];
 * encodeTuple(args); // Python loads (1, 'two'); args is still a plain array
 * ```
 */
export function encodeTuple(items: readonly unknown[], options: EncodeOptions = {}): Uint8Array {
  return shortTuple(items, options) || encodeValue(asTuple(Array.from(items)), options);
}

/** A tuple of a few scalars written directly (see scalarTuplePickle), where the options allow. */
function shortTuple(items: readonly unknown[], options: EncodeOptions): Uint8Array | undefined {
  const protocol = options.protocol ?? DEFAULT_PROTOCOL;
  if (options.maxDepth !== undefined || (protocol !== 4 && protocol !== 5)) return undefined;
  return scalarTuplePickle(items, protocol);
}

function encodeValue(value: unknown, options: EncodeOptions): Uint8Array {
  const protocol = options.protocol ?? DEFAULT_PROTOCOL;
  if (protocol !== 4 && !(pickleProtocols as readonly unknown[]).includes(protocol)) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `Unknown pickle protocol ${String(protocol)}. Use 2, 3, 4 or 5.`,
    );
  }
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  if (!Number.isInteger(maxDepth) || maxDepth < 1) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      source,
      `maxDepth must be a positive integer, not ${String(maxDepth)}.`,
    );
  }
  const e = idle ?? new Encoder();
  idle = undefined;
  e.begin(protocol, maxDepth);
  try {
    e.reserve(11);
    e.buf[e.pos++] = PROTO;
    e.buf[e.pos++] = protocol;
    const framed = protocol >= 4;
    if (framed) {
      // One frame around the whole pickle (FRAME is optional for readers; CPython writes it).
      e.buf[e.pos++] = FRAME;
      e.pos += 8;
    }
    e.save(value, 0);
    e.op(STOP);
    if (framed) {
      const length = e.pos - 11;
      e.view.setUint32(3, length >>> 0, true);
      e.view.setUint32(7, Math.floor(length / 0x100000000), true);
    }
    return e.result();
  } catch (error) {
    if (error instanceof EncodeFailure) {
      throw new PickleEncodeError(findPath(value, error.value), `${error.message}.`);
    }
    if (error instanceof RangeError && /call stack/i.test(error.message)) {
      throw new PickleEncodeError(
        "value",
        "it is nested too deeply for the JavaScript stack. Lower maxDepth, or flatten the value.",
      );
    }
    throw error;
  } finally {
    e.finish();
    idle = e;
  }
}

let idle: Encoder | undefined = new Encoder();
