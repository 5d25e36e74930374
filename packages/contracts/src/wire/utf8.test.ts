import { describe, expect, it } from "vitest";
import { strictUtf8Text } from "./utf8.js";

const bytes = (...values: number[]) => new Uint8Array(values);

describe("strictUtf8Text", () => {
  it("reads ASCII, and UTF-8 beyond it, from a view inside a larger buffer", () => {
    const whole = new TextEncoder().encode('xx{"host":"node-7"}yy');
    expect(strictUtf8Text(whole.subarray(2, whole.length - 2))).toBe('{"host":"node-7"}');
    expect(strictUtf8Text(new TextEncoder().encode("nœud ✓ 🐑"))).toBe("nœud ✓ 🐑");
    expect(strictUtf8Text(bytes())).toBe("");
  });

  it("keeps a byte-order mark, and refuses bytes that are not UTF-8", () => {
    expect(strictUtf8Text(bytes(0xef, 0xbb, 0xbf, 0x41))).toBe("\ufeffA");
    expect(() => strictUtf8Text(bytes(0x41, 0xff))).toThrow(TypeError);
    expect(() => strictUtf8Text(bytes(0xc3))).toThrow(TypeError);
    expect(() => strictUtf8Text(bytes(0xed, 0xa0, 0x80))).toThrow(TypeError); // a lone surrogate
  });
});
