import { describe, expect, it } from "vitest";
import { signalName } from "./signals.js";

describe("signalName", () => {
  it("names Linux signals, real-time ones included, and nothing else", () => {
    expect(signalName(9)).toBe("SIGKILL");
    expect(signalName(15)).toBe("SIGTERM");
    expect(signalName(34)).toBe("SIGRTMIN");
    expect(signalName(40)).toBe("SIGRTMIN+6");
    expect(signalName(0)).toBeUndefined();
    expect(signalName(65)).toBeUndefined();
  });
});
