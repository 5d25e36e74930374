import { NS_FUNCTION_MARKER, SheepdogError } from "@sheepdog/contracts";
import type { PickleProtocol } from "@sheepdog/serialise";
import { encode, functionSource, isPyFunction } from "@sheepdog/serialise";
import { source } from "./source.js";

const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The namespace as the worker reads it: a pickled dict from names to values, where a `py`
 * function is marked (wire.ts, NS_FUNCTION_MARKER) so the worker defines it instead.
 * Empty bytes for an empty namespace.
 */
export function encodeNamespace(ns: Record<string, unknown>, protocol: PickleProtocol): Uint8Array {
  if (ns === null || typeof ns !== "object" || Array.isArray(ns)) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      "ns must be an object of names to values and py functions, like { constant: 12, g }.",
    );
  }
  const entries = Object.entries(ns);
  if (entries.length === 0) return new Uint8Array(0);
  const dict: Record<string, unknown> = {};
  for (const [name, value] of entries) {
    if (!identifier.test(name)) {
      throw new SheepdogError(
        "INVALID_INPUT",
        source,
        `ns key "${name}" is not a Python identifier; the function could not refer to it.`,
      );
    }
    dict[name] = isPyFunction(value) ? { [NS_FUNCTION_MARKER]: functionSource(value) } : value;
  }
  return encode(dict, { protocol });
}
