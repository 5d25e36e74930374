import { SheepdogError } from "@sheepdog/contracts";
import { describe, expect, it } from "vitest";
import { PickleDecodeError, PickleEncodeError } from "./errors.js";
import { decode, encode } from "./index.js";

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

describe("the pickle errors", () => {
  it("carry where and why as fields and as detail, recognised by their own isInstance", () => {
    const error = thrown(() => decode(new Uint8Array([0x80, 2, 0x4b])));
    if (!PickleDecodeError.isInstance(error)) throw error;
    expect(error.detail).toEqual({
      offset: error.offset,
      opcode: error.opcode,
      reason: error.reason,
    });
    expect(error.source).toBe("serialise");
    expect(error.text).toMatch(/^Cannot decode pickle at byte \d+/);
    expect(PickleEncodeError.isInstance(error)).toBe(false);
    expect(SheepdogError.isInstance(error)).toBe(true);

    const refused = thrown(() => encode([1, () => 2]));
    if (!PickleEncodeError.isInstance(refused)) throw refused;
    expect(refused.detail).toEqual({ path: refused.path });
    expect(PickleDecodeError.isInstance(refused)).toBe(false);
  });
});
