import { describe, expect, it } from "vitest";

const dist = new URL("../dist/index.js", import.meta.url);

describe("the built package", () => {
  it("exports connect and the host key errors", async () => {
    const mod = (await import(dist.href)) as Record<string, unknown>;
    expect(Object.keys(mod).sort()).toEqual([
      "HostKeyChangedError",
      "HostKeyUnknownError",
      "connect",
    ]);
    expect(typeof mod.connect).toBe("function");
  });
});
