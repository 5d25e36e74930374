import { SheepdogError } from "@sheepdog/contracts";
import { source } from "./internal/source.js";

/**
 * The JavaScript side of Python values that have no exact JavaScript twin: tuples, frozensets,
 * bytearrays, floats that look like integers, references to Python globals, and opaque objects.
 *
 * Markers are registered symbols (`Symbol.for`), so values made by one copy of this package are
 * recognised by another.
 */

const tupleMarker: unique symbol = Symbol.for("sheepdog.serialise.tuple");
const frozenSetMarker: unique symbol = Symbol.for("sheepdog.serialise.frozenset");
const byteArrayMarker: unique symbol = Symbol.for("sheepdog.serialise.bytearray");
/** Set on the prototypes of {@link PyFloat}, {@link PyGlobal} and {@link PyObject}. */
export const kindMarker: unique symbol = Symbol.for("sheepdog.serialise.kind");

export { byteArrayMarker, frozenSetMarker, tupleMarker };

/**
 * A Python tuple: an `Array` carrying a marker, so that it encodes as a tuple rather than a list.
 * Decoding a tuple gives one of these; indexing, `length` and iteration work as on any array.
 * Copies (`[...t]`, `t.map(...)`) are plain arrays, that is, lists.
 */
export type PyTuple<T = unknown> = T[] & { readonly [tupleMarker]: true };

/** A Python frozenset: a `Set` carrying a marker, so that it encodes as a frozenset. */
export type PyFrozenSet<T = unknown> = Set<T> & { readonly [frozenSetMarker]: true };

/** A Python bytearray: a `Uint8Array` carrying a marker, so that it encodes as a bytearray. */
export type PyByteArray = Uint8Array & { readonly [byteArrayMarker]: true };

/**
 * Makes a Python tuple from its items.
 *
 * @example
 * ```ts
 * encode(tuple(1, "a")); // Python loads (1, 'a')
 * ```
 */
export function tuple<T extends unknown[]>(...items: T): T & { readonly [tupleMarker]: true } {
  return asTuple(items) as unknown as T & { readonly [tupleMarker]: true };
}

// Markers are not enumerable, so that a tuple, frozenset or bytearray prints, compares (deep
// equality) and copies as the Array, Set or Uint8Array it is.
const hidden: PropertyDescriptor = { value: true };

/**
 * A tuple's marker sits on its prototype, which inherits everything from Array.prototype: one
 * prototype switch costs a third of defining a non-enumerable property on each tuple (decoding
 * makes many), and the array still prints, compares and spreads as a plain array.
 */
const tuplePrototype: object = Object.create(Array.prototype, { [tupleMarker]: hidden });

/**
 * Marks an existing array as a Python tuple, in place, and returns it. Use it instead of
 * {@link tuple} for long arrays (spreading a long array into arguments can overflow the stack).
 */
export function asTuple<T>(items: T[]): PyTuple<T> {
  Object.setPrototypeOf(items, tuplePrototype);
  return items as PyTuple<T>;
}

/** True for an array marked as a Python tuple (by {@link tuple}, {@link asTuple} or decoding). */
export function isTuple(value: unknown): value is PyTuple {
  return (
    Array.isArray(value) && (value as unknown as Record<symbol, unknown>)[tupleMarker] === true
  );
}

/**
 * Makes a Python frozenset.
 *
 * @example
 * ```ts
 * encode(frozenset([1, 2])); // Python loads frozenset({1, 2})
 * ```
 */
export function frozenset<T>(items: Iterable<T> = []): PyFrozenSet<T> {
  return markFrozenSet(new Set(items));
}

/** Marks a Set as a frozenset in place. */
export function markFrozenSet<T>(set: Set<T>): PyFrozenSet<T> {
  Object.defineProperty(set, frozenSetMarker, hidden);
  return set as PyFrozenSet<T>;
}

/** True for a `Set` marked as a Python frozenset. */
export function isFrozenSet(value: unknown): value is PyFrozenSet {
  return (
    value instanceof Set && (value as unknown as Record<symbol, unknown>)[frozenSetMarker] === true
  );
}

/**
 * Makes a Python bytearray: a copy of `source` (bytes, an array of byte values, or a length for a
 * zero-filled one), marked so that it encodes as a bytearray rather than bytes.
 */
export function bytearray(source: ArrayLike<number> | ArrayBufferLike | number = 0): PyByteArray {
  const bytes =
    typeof source === "number"
      ? new Uint8Array(source)
      : new Uint8Array(source as ArrayLike<number>);
  return markByteArray(bytes);
}

/** Marks a Uint8Array as a bytearray in place. */
export function markByteArray(bytes: Uint8Array): PyByteArray {
  Object.defineProperty(bytes, byteArrayMarker, hidden);
  return bytes as PyByteArray;
}

/** True for a `Uint8Array` marked as a Python bytearray. */
export function isByteArray(value: unknown): value is PyByteArray {
  return (
    value instanceof Uint8Array &&
    (value as unknown as Record<symbol, unknown>)[byteArrayMarker] === true
  );
}

function hasKind(value: unknown, kind: string): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as Record<symbol, unknown>)[kindMarker] === kind
  );
}

/**
 * A number that encodes as a Python float even when it is an integer. A plain JavaScript number
 * that is a safe integer (and not -0) encodes as a Python int; wrap it to send a float.
 * Decoding never makes these: a Python float decodes to a plain number.
 *
 * @example
 * ```ts
 * encode(pyFloat(3)); // Python loads 3.0, not 3
 * ```
 */
export class PyFloat {
  declare readonly [kindMarker]: "float";
  constructor(readonly value: number) {}

  /** The number itself, so that `+f` and arithmetic work. */
  valueOf(): number {
    return this.value;
  }

  /** True for any PyFloat, even one made by another copy of this package. */
  static isInstance(value: unknown): value is PyFloat {
    return hasKind(value, "float");
  }
}
Object.defineProperty(PyFloat.prototype, kindMarker, { value: "float" });

/** Wraps a number so that it encodes as a Python float. See {@link PyFloat}. */
export function pyFloat(value: number): PyFloat {
  return new PyFloat(value);
}

/**
 * A reference to a Python global: a class or function named by its module and qualified name,
 * such as `collections.OrderedDict`. Decoding makes one for every GLOBAL / STACK_GLOBAL in a
 * pickle; nothing is imported or looked up.
 */
export class PyGlobal {
  declare readonly [kindMarker]: "global";
  constructor(
    /** The module, e.g. `"collections"`. */
    readonly module: string,
    /** The qualified name in the module, e.g. `"OrderedDict"` or `"Outer.Inner"`. */
    readonly name: string,
  ) {}

  /** `module.name`. */
  toString(): string {
    return `${this.module}.${this.name}`;
  }

  /** True for any PyGlobal, even one made by another copy of this package. */
  static isInstance(value: unknown): value is PyGlobal {
    return hasKind(value, "global");
  }
}
Object.defineProperty(PyGlobal.prototype, kindMarker, { value: "global" });

/** How Python builds a {@link PyObject}. */
export type PyObjectKind =
  /** `callable(*args)` (opcode REDUCE). */
  | "reduce"
  /** `cls.__new__(cls, *args)` (opcode NEWOBJ). */
  | "newobj"
  /** `cls.__new__(cls, *args, **kwargs)` (opcode NEWOBJ_EX). */
  | "newobj_ex"
  /**
   * A Python 2 classic instance (opcodes INST / OBJ): `cls(*args)` when there are arguments or
   * the class has `__getinitargs__`, else `cls.__new__(cls)`, without calling `__init__`
   * (CPython's rule; written back as OBJ so that CPython applies it again).
   */
  | "obj";

/** The fields of a {@link PyObject}. */
export interface PyObjectInit {
  /** @default "reduce" */
  kind?: PyObjectKind;
  /** The callable (for `reduce`) or the class (for the other kinds); usually a PyGlobal. */
  callable: unknown;
  /** Positional arguments; always encoded as a tuple. @default [] */
  args?: unknown[];
  /** Keyword arguments, for `newobj_ex`. */
  kwargs?: Record<string, unknown>;
  /** Items appended after creation (opcodes APPEND / APPENDS), e.g. a deque's contents. */
  listItems?: unknown[];
  /** Key-value pairs set after creation (opcodes SETITEM / SETITEMS), e.g. an OrderedDict's. */
  dictItems?: [unknown, unknown][];
  /** The state passed to `__setstate__` or merged into `__dict__` (opcode BUILD). */
  state?: unknown;
}

/**
 * Any Python object this codec does not map to a JavaScript value — a numpy array, a datetime, a
 * Decimal, a dataclass instance — kept as the recipe in its pickle: how it is created (a callable
 * or class and its arguments), the items added after creation, and its state. Encoding writes the
 * same recipe back (adapted to the target protocol), so Python loads an equal object of the same
 * type. Decoding only records the recipe: nothing is imported or called.
 *
 * @example
 * ```ts
 * const d = new PyObject({ callable: new PyGlobal("decimal", "Decimal"), args: ["1.10"] });
 * encode(d); // Python loads Decimal('1.10')
 * ```
 */
export class PyObject {
  declare readonly [kindMarker]: "object";
  kind: PyObjectKind;
  callable: unknown;
  args: unknown[];
  kwargs: Record<string, unknown> | undefined;
  listItems: unknown[] | undefined;
  dictItems: [unknown, unknown][] | undefined;
  /** `undefined` when the pickle has no BUILD for this object (`null` is Python's None). */
  state: unknown;

  constructor(init: PyObjectInit) {
    this.kind = init.kind ?? "reduce";
    this.callable = init.callable;
    this.args = init.args ?? [];
    this.kwargs = init.kwargs;
    this.listItems = init.listItems;
    this.dictItems = init.dictItems;
    this.state = init.state;
  }

  /**
   * A best-effort name of the object's Python type, such as `"numpy.ndarray"`,
   * `"datetime.datetime"` or `"collections.OrderedDict"`: the class for NEWOBJ, the class
   * argument of the reconstructors CPython and numpy use, else the callable. `undefined` when the
   * callable is not a plain global.
   */
  get type(): string | undefined {
    const callable = this.callable;
    if (!PyGlobal.isInstance(callable)) return undefined;
    const first = this.args[0];
    if (
      this.kind === "reduce" &&
      PyGlobal.isInstance(first) &&
      (reconstructors.has(callable.toString()) ||
        callable.name === "_reconstruct" ||
        callable.name === "__newobj__")
    ) {
      return first.toString();
    }
    if (callable.name === "_frombuffer" && callable.module.startsWith("numpy")) {
      return "numpy.ndarray";
    }
    return callable.toString();
  }

  /** True for any PyObject, even one made by another copy of this package. */
  static isInstance(value: unknown): value is PyObject {
    return hasKind(value, "object");
  }
}
Object.defineProperty(PyObject.prototype, kindMarker, { value: "object" });

const reconstructors = new Set(["copyreg._reconstructor", "copyreg.__newobj__"]);

const ndarrayMarker: unique symbol = Symbol.for("sheepdog.serialise.ndarray");

export { ndarrayMarker };

/** The numpy dtypes that decode to typed arrays, by numpy's name for them. */
export type NdArrayDtype =
  | "bool"
  | "int8"
  | "uint8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "int64"
  | "uint64"
  | "float32"
  | "float64";

/** The typed arrays that hold a numpy array's elements. */
export type NdArrayData =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

/**
 * A numpy array: a typed array of its elements in row-major (C) order, whatever order numpy kept
 * them in, carrying numpy's `shape` and `dtype` as non-enumerable properties (so it still prints,
 * compares and iterates as the typed array it is). Decoding makes one for every numpy array of a
 * dtype in {@link NdArrayDtype}; {@link ndarray} marks one to send. Encoding writes it back as a
 * numpy array of the same dtype, byte order, shape and memory order.
 *
 * @example
 * ```ts
 * const a = decode(bytes) as NdArray<Float64Array>; // np.arange(6.0).reshape(2, 3)
 * a.shape; // [2, 3]
 * a.dtype; // "float64"
 * a[1 * 3 + 2]; // 5: the element at [1, 2]
 * ```
 */
export type NdArray<T extends NdArrayData = NdArrayData> = T & {
  /** numpy's shape: `[]` for a 0-d array, whose one element is `a[0]`. */
  readonly shape: readonly number[];
  /** numpy's dtype name. A bool array's elements are 0 and 1. */
  readonly dtype: NdArrayDtype;
};

/** How an {@link NdArray} was laid out in numpy, restored when it is encoded. */
export interface NdArrayLayout {
  /** `<` little-endian, `>` big-endian, `|` one byte. */
  byteOrder: "<" | ">" | "|";
  /** numpy kept the elements in Fortran (column-major) order. */
  fortran: boolean;
  /** The numpy package the pickle named: `numpy.core` (numpy 1), or numpy 2's `numpy._core`. */
  core: string;
  /**
   * How the pickle built the array, and how it is written back: `_reconstruct` then its state
   * (numpy before protocol 5; numpy loads it in the machine's byte order), or `_frombuffer`
   * (numpy from protocol 5; the byte order kept).
   */
  recipe: "reconstruct" | "frombuffer";
}

/** The typed array that holds each dtype's elements, and their size in bytes. */
export const NDARRAY_TYPES: Readonly<
  Record<NdArrayDtype, { Data: new (length: number) => NdArrayData; itemSize: number }>
> = {
  bool: { Data: Uint8Array, itemSize: 1 },
  int8: { Data: Int8Array, itemSize: 1 },
  uint8: { Data: Uint8Array, itemSize: 1 },
  int16: { Data: Int16Array, itemSize: 2 },
  uint16: { Data: Uint16Array, itemSize: 2 },
  int32: { Data: Int32Array, itemSize: 4 },
  uint32: { Data: Uint32Array, itemSize: 4 },
  int64: { Data: BigInt64Array, itemSize: 8 },
  uint64: { Data: BigUint64Array, itemSize: 8 },
  float32: { Data: Float32Array, itemSize: 4 },
  float64: { Data: Float64Array, itemSize: 8 },
};

/** Options of {@link ndarray}. */
export interface NdArrayOptions {
  /** numpy's shape; its product must be the number of elements. @default [data.length] */
  shape?: readonly number[];
  /**
   * The dtype; it must be the one `data`'s type holds (`bool` or `uint8` for a Uint8Array).
   * @default the dtype of `data`'s type ("uint8" for a Uint8Array)
   */
  dtype?: NdArrayDtype;
}

function defaultDtype(data: NdArrayData): NdArrayDtype | undefined {
  const names = Object.keys(NDARRAY_TYPES) as NdArrayDtype[];
  return names.find((name) => name !== "bool" && data instanceof NDARRAY_TYPES[name].Data);
}

/** Marks a typed array as a numpy array, in place; `ndarray` checks the arguments first. */
export function markNdArray<T extends NdArrayData>(
  data: T,
  shape: readonly number[],
  dtype: NdArrayDtype,
  layout: NdArrayLayout,
): NdArray<T> {
  // Configurable, so that ndarray() can mark an array again (another shape, say).
  Object.defineProperties(data, {
    shape: { value: Object.freeze([...shape]), configurable: true },
    dtype: { value: dtype, configurable: true },
    [ndarrayMarker]: { value: layout, configurable: true },
  });
  return data as NdArray<T>;
}

/**
 * Marks a typed array, in place, as a numpy array to send: its elements in row-major (C) order,
 * with a shape and a dtype. Python loads it as a C-ordered array in the machine's byte order.
 *
 * @example
 * ```ts
 * encode(ndarray(new Float64Array([1, 2, 3, 4]), { shape: [2, 2] }));
 * // Python loads np.array([[1., 2.], [3., 4.]])
 * ```
 */
export function ndarray<T extends NdArrayData>(data: T, options: NdArrayOptions = {}): NdArray<T> {
  const shape = options.shape ?? [data.length];
  const dtype = options.dtype ?? defaultDtype(data);
  const fits =
    dtype !== undefined &&
    NDARRAY_TYPES[dtype] !== undefined &&
    data instanceof NDARRAY_TYPES[dtype].Data;
  if (!fits) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `ndarray: a ${data?.constructor?.name ?? typeof data} cannot hold dtype ${String(dtype)}. Pass the typed array of that dtype (bool and uint8: Uint8Array, int64: BigInt64Array, float64: Float64Array, ...).`,
    );
  }
  const count = shape.reduce((n, d) => n * d, 1);
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0) || count !== data.length) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `ndarray: shape [${shape.join(", ")}] does not hold ${data.length} elements. Pass a shape of non-negative integers whose product is data.length.`,
    );
  }
  const byteOrder = NDARRAY_TYPES[dtype].itemSize === 1 ? "|" : littleEndianHost ? "<" : ">";
  // numpy.core.multiarray._reconstruct: numpy 1 and 2 both load it without a warning.
  const layout: NdArrayLayout = {
    byteOrder,
    fortran: false,
    core: "numpy.core",
    recipe: "reconstruct",
  };
  return markNdArray(data, shape, dtype, layout);
}

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** True for a typed array marked as a numpy array (decoded, or made by {@link ndarray}). */
export function isNdArray(value: unknown): value is NdArray {
  return ArrayBuffer.isView(value) && ndarrayLayout(value) !== undefined;
}

/** The layout of a numpy array, or undefined for anything else. */
export function ndarrayLayout(value: object): NdArrayLayout | undefined {
  return (value as Record<symbol, NdArrayLayout | undefined>)[ndarrayMarker];
}
