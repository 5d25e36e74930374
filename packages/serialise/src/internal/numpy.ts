/**
 * numpy's pickles, read as JavaScript values and written back. numpy writes a scalar as
 * `scalar(dtype, bytes)`, an array as `_reconstruct(ndarray, (0,), b'b')` then BUILD with
 * `(1, shape, dtype, is_fortran, bytes)`, and, from protocol 5, `_frombuffer(buffer, dtype,
 * shape, order)`; numpy 1 names their module `numpy.core.*`, numpy 2 `numpy._core.*`. A dtype is
 * `dtype(code, False, True)` then BUILD with `(3, byte_order, None, None, None, -1, -1, 0)`.
 * Only these exact shapes, of the plain numeric dtypes, are read; anything else stays a recipe.
 * This reads data; it imports and calls nothing.
 */

import {
  asTuple,
  markByteArray,
  markNdArray,
  NDARRAY_TYPES,
  type NdArray,
  type NdArrayData,
  type NdArrayDtype,
  type NdArrayLayout,
  ndarrayLayout,
  PyGlobal,
  PyObject,
  tuple,
} from "../values.js";

/** Takes `n` from the decoder's copy budget; false when it is spent. */
export interface CopyBudget {
  spend(n: number): boolean;
}

/** Returned when reading an array would copy more than the decoder's budget allows. */
export const BUDGET_SPENT: unique symbol = Symbol("copy budget spent");

/** numpy's dtype codes (`dtype.str` without its byte order) of the dtypes read here. */
const CODES: Readonly<Record<string, NdArrayDtype>> = {
  b1: "bool",
  i1: "int8",
  u1: "uint8",
  i2: "int16",
  u2: "uint16",
  i4: "int32",
  u4: "uint32",
  i8: "int64",
  u8: "uint64",
  f4: "float32",
  f8: "float64",
};

const CODE_OF = Object.fromEntries(
  Object.entries(CODES).map(([code, name]) => [name, code]),
) as Record<NdArrayDtype, string>;

interface Dtype {
  /** A dtype read as a typed array's, or "float16" (scalars only). */
  name: NdArrayDtype | "float16";
  byteOrder: "<" | ">" | "|";
}

function isNumpy(g: PyGlobal, submodule: "multiarray" | "numeric", name: string): boolean {
  return (
    g.name === name &&
    (g.module === `numpy.core.${submodule}` || g.module === `numpy._core.${submodule}`)
  );
}

/** A dtype exactly as numpy writes a plain numeric one, else undefined. */
function readDtype(v: unknown): Dtype | undefined {
  if (!(v instanceof PyObject) || v.kind !== "reduce" || !(v.callable instanceof PyGlobal)) return;
  const { module, name } = v.callable;
  if (module !== "numpy" || name !== "dtype" || v.args.length !== 3) return;
  const [code, align, copy] = v.args;
  const dtype = code === "f2" ? "float16" : typeof code === "string" ? CODES[code] : undefined;
  if (dtype === undefined || align !== false || copy !== true) return;
  const state = v.state;
  if (!Array.isArray(state) || state.length !== 8) return;
  const [version, order, ...rest] = state;
  const plain = [null, null, null, -1, -1, 0];
  if (version !== 3 || !rest.every((x, i) => x === plain[i])) return;
  if (order !== "<" && order !== ">" && order !== "|") return;
  return { name: dtype, byteOrder: order };
}

/** Half-precision bits as a number. */
function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

function safeInt(v: bigint): number | bigint {
  return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
}

/** numpy's `scalar(dtype, bytes)` as a number, bigint or boolean; undefined if not one read here. */
function readScalar(args: unknown[]): unknown {
  if (args.length !== 2) return;
  const dtype = readDtype(args[0]);
  const data = args[1];
  if (dtype === undefined || !(data instanceof Uint8Array)) return;
  const size = dtype.name === "float16" ? 2 : NDARRAY_TYPES[dtype.name].itemSize;
  if (data.length !== size) return;
  const view = new DataView(data.buffer, data.byteOffset, size);
  const little = dtype.byteOrder !== ">";
  switch (dtype.name) {
    case "bool":
      return data[0] !== 0;
    case "int8":
      return view.getInt8(0);
    case "uint8":
      return view.getUint8(0);
    case "int16":
      return view.getInt16(0, little);
    case "uint16":
      return view.getUint16(0, little);
    case "int32":
      return view.getInt32(0, little);
    case "uint32":
      return view.getUint32(0, little);
    case "int64":
      return safeInt(view.getBigInt64(0, little));
    case "uint64":
      return safeInt(view.getBigUint64(0, little));
    case "float16":
      return halfToNumber(view.getUint16(0, little));
    case "float32":
      return view.getFloat32(0, little);
    case "float64":
      return view.getFloat64(0, little);
  }
}

function readShape(v: unknown): number[] | undefined {
  if (!Array.isArray(v) || !v.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) return;
  return v as number[];
}

/**
 * Moves the elements of `src` between row-major (C) and column-major (Fortran) order for `shape`,
 * in time linear in their number.
 */
function reorder<T extends NdArrayData>(src: T, shape: readonly number[], toFortran: boolean): T {
  const out = new (src.constructor as new (n: number) => T)(src.length);
  const strides: number[] = [];
  let stride = 1;
  for (const d of shape) {
    strides.push(stride);
    stride *= d;
  }
  const index = shape.map(() => 0);
  let f = 0;
  for (let c = 0; c < src.length; c++) {
    if (toFortran) out[f] = src[c] as never;
    else out[c] = src[f] as never;
    for (let k = shape.length - 1; k >= 0; k--) {
      f += strides[k] as number;
      if (++(index[k] as number) < (shape[k] as number)) break;
      f -= (strides[k] as number) * (shape[k] as number);
      index[k] = 0;
    }
  }
  return out;
}

/** Reverses the bytes of each `size`-byte element of `bytes`, in place. */
function swapBytes(bytes: Uint8Array, size: number): void {
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function needsSwap(byteOrder: "<" | ">" | "|"): boolean {
  return byteOrder === (littleEndianHost ? ">" : "<");
}

/**
 * A numpy array's raw bytes as an NdArray, or undefined when they do not fit its shape. The bytes
 * are copied (into aligned memory), taken from `budget`.
 */
function toNdArray(
  raw: Uint8Array,
  dtype: Dtype,
  shape: number[],
  layout: Omit<NdArrayLayout, "byteOrder">,
  budget: CopyBudget,
): NdArray | typeof BUDGET_SPENT | undefined {
  if (dtype.name === "float16") return;
  const { Data, itemSize } = NDARRAY_TYPES[dtype.name];
  const count = shape.reduce((n, d) => n * d, 1);
  if (count * itemSize !== raw.length) return;
  if (!budget.spend(raw.length)) return BUDGET_SPENT;
  const bytes = raw.slice();
  if (needsSwap(dtype.byteOrder)) swapBytes(bytes, itemSize);
  let data = new (Data as unknown as new (b: ArrayBuffer) => NdArrayData)(bytes.buffer);
  if (layout.fortran && shape.length > 1) data = reorder(data, shape, false);
  return markNdArray(data, shape, dtype.name, { ...layout, byteOrder: dtype.byteOrder });
}

/**
 * numpy's reductions that make values: `scalar(dtype, bytes)` (a number, bigint or boolean) and
 * `_frombuffer(buffer, dtype, shape, order)` (an NdArray). Undefined for anything else.
 */
export function numpyReduce(
  callable: PyGlobal,
  args: unknown[],
  budget: CopyBudget,
): unknown | typeof BUDGET_SPENT {
  if (isNumpy(callable, "multiarray", "scalar")) return readScalar(args);
  if (!isNumpy(callable, "numeric", "_frombuffer") || args.length !== 4) return;
  const [buffer, dtypeArg, shapeArg, order] = args;
  const dtype = readDtype(dtypeArg);
  const shape = readShape(shapeArg);
  if (!(buffer instanceof Uint8Array) || dtype === undefined || shape === undefined) return;
  if (order !== "C" && order !== "F") return;
  const core = callable.module.slice(0, -".numeric".length);
  return toNdArray(
    buffer,
    dtype,
    shape,
    { fortran: order === "F", core, recipe: "frombuffer" },
    budget,
  );
}

/**
 * A numpy array when `target`, built by `_reconstruct(ndarray, (0,), b'b')`, receives `state`
 * `(1, shape, dtype, is_fortran, bytes)`; undefined for anything else (an object array, a
 * subclass, another dtype), which stays a recipe.
 */
export function numpyBuild(
  target: PyObject,
  state: unknown,
  budget: CopyBudget,
): NdArray | typeof BUDGET_SPENT | undefined {
  const { callable, args } = target;
  if (target.kind !== "reduce" || !(callable instanceof PyGlobal)) return;
  if (!isNumpy(callable, "multiarray", "_reconstruct") || args.length !== 3) return;
  const [cls, base, code] = args;
  if (!(cls instanceof PyGlobal) || cls.module !== "numpy" || cls.name !== "ndarray") return;
  if (!Array.isArray(base) || base.length !== 1 || base[0] !== 0) return;
  if (!(code instanceof Uint8Array) || code.length !== 1 || code[0] !== 0x62) return;
  if (!Array.isArray(state) || state.length !== 5 || state[0] !== 1) return;
  const [, shapeArg, dtypeArg, fortran, raw] = state;
  const shape = readShape(shapeArg);
  const dtype = readDtype(dtypeArg);
  if (shape === undefined || dtype === undefined || typeof fortran !== "boolean") return;
  if (!(raw instanceof Uint8Array)) return;
  const core = callable.module.slice(0, -".multiarray".length);
  return toNdArray(raw, dtype, shape, { fortran, core, recipe: "reconstruct" }, budget);
}

/**
 * The recipe numpy wrote for the array (see {@link NdArrayLayout}), for an NdArray to encode: its
 * elements in numpy's memory and byte order.
 */
export function ndarrayRecipe(array: NdArray): PyObject {
  const layout = ndarrayLayout(array) as NdArrayLayout;
  const { itemSize } = NDARRAY_TYPES[array.dtype];
  let data: NdArrayData = array;
  if (layout.fortran && array.shape.length > 1) data = reorder(array, array.shape, true);
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  if (array.dtype === "bool") for (let i = 0; i < raw.length; i++) raw[i] = raw[i] ? 1 : 0;
  if (needsSwap(layout.byteOrder)) swapBytes(raw, itemSize);
  const dtype = new PyObject({
    callable: new PyGlobal("numpy", "dtype"),
    args: [CODE_OF[array.dtype], false, true],
    state: tuple(3, layout.byteOrder, null, null, null, -1, -1, 0),
  });
  const shape = asTuple([...array.shape]);
  if (layout.recipe === "frombuffer") {
    return new PyObject({
      callable: new PyGlobal(`${layout.core}.numeric`, "_frombuffer"),
      args: [markByteArray(raw), dtype, shape, layout.fortran ? "F" : "C"],
    });
  }
  return new PyObject({
    callable: new PyGlobal(`${layout.core}.multiarray`, "_reconstruct"),
    args: [new PyGlobal("numpy", "ndarray"), tuple(0), new Uint8Array([0x62])],
    state: tuple(1, shape, dtype, layout.fortran, raw),
  });
}
