export type { DecodeOptions } from "./decode.js";
export { decode } from "./decode.js";
export type { EncodeOptions, PickleProtocol } from "./encode.js";
export {
  DEFAULT_MAX_DEPTH,
  DEFAULT_PROTOCOL,
  encode,
  encodeTuple,
  pickleProtocols,
} from "./encode.js";
export { PickleDecodeError, PickleEncodeError } from "./errors.js";
export type { PyFileOptions, PyNamedTag, PyTag, ShippedFunction, UntypedArgs } from "./py.js";
export {
  functionSource,
  functionSourceChecking,
  isPyFunction,
  PyFunction,
  py,
  pyFile,
} from "./py.js";
export type {
  NdArray,
  NdArrayData,
  NdArrayDtype,
  NdArrayOptions,
  PyByteArray,
  PyFrozenSet,
  PyObjectInit,
  PyObjectKind,
  PyTuple,
} from "./values.js";
export {
  asTuple,
  bytearray,
  frozenset,
  isByteArray,
  isFrozenSet,
  isNdArray,
  isTuple,
  ndarray,
  PyFloat,
  PyGlobal,
  PyObject,
  pyFloat,
  tuple,
} from "./values.js";
