/** The function of a request, as Sheepdog stores it: UTF-8 JSON `{ name, source }`. */
export interface FunctionInfo {
  /** The function's name, `"?"` when the bytes are not Sheepdog's. */
  name: string;
  /** Its Python source, `null` when the bytes are not Sheepdog's. */
  source: string | null;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** The name and source in a request's `func` bytes; never throws. */
export function functionInfo(func: Uint8Array): FunctionInfo {
  try {
    const parsed: unknown = JSON.parse(decoder.decode(func));
    if (typeof parsed === "object" && parsed !== null) {
      const { name, source } = parsed as { name?: unknown; source?: unknown };
      return {
        name: typeof name === "string" && name !== "" ? name : "?",
        source: typeof source === "string" ? source : null,
      };
    }
  } catch {
    // Not Sheepdog's JSON: another program's request in the same store.
  }
  return { name: "?", source: null };
}
