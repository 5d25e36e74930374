import { describe, expect, it } from "vitest";
import { ScriptedRemote } from "../__fixtures__/scripted-remote.js";
import { gridEngine } from "../grid-engine.js";
import { memGrabBytes } from "./mem-grab.js";

const GiB = 1024 ** 3;

describe("gridEngine memoryLimitBytes (-l mem_grab)", () => {
  const scheduler = gridEngine(new ScriptedRemote());
  const limit = (options: string[]) => scheduler.memoryLimitBytes(options);

  it("reads every suffix in powers of 1024, in either case, as the original Sheepdog did", () => {
    const TiB = 1024 ** 4;
    // The original's own table (its test_sets_memlimit), every entry.
    const original: [string, number][] = [
      ["123", 123],
      ["3k", 3 * 1024],
      ["5K", 5 * 1024],
      ["2M", 2 * 1024 ** 2],
      ["2000m", 2000 * 1024 ** 2],
      ["1g", GiB],
      ["8g", 8 * GiB],
      ["3t", 3 * TiB],
      ["1T", TiB],
    ];
    for (const [size, bytes] of original) {
      expect(limit([`-l mem_grab=${size}`]), size).toBe(bytes);
    }
    expect(limit(["-l mem_grab=2G"])).toBe(2 * GiB);
    expect(limit(["-l mem_grab=2g"])).toBe(2 * GiB);
    expect(limit(["-l mem_grab=500M"])).toBe(500 * 1024 ** 2);
    expect(limit(["-l mem_grab=300k"])).toBe(300 * 1024);
    expect(limit(["-l mem_grab=1.5G"])).toBe(1.5 * GiB);
    expect(limit(["-l mem_grab=1048576"])).toBe(1_048_576);
  });

  it("finds mem_grab in a resource list, in quotes, and after other options", () => {
    expect(limit(["-l h_rt=1:0:0,mem_grab=500M"])).toBe(500 * 1024 ** 2);
    expect(limit(["-l a=1,mem_grab=1G"])).toBe(GiB);
    expect(limit(['-l "mem_grab=1G"'])).toBe(GiB);
    expect(limit(["-hard -l mem_grab=1G"])).toBe(GiB);
  });

  it("lets the last request win", () => {
    expect(limit(["-l mem_grab=1G", "-l mem_grab=2G"])).toBe(2 * GiB);
    expect(limit(["-l mem_grab=1G,mem_grab=3g"])).toBe(3 * GiB);
  });

  it("answers undefined when no option asks for mem_grab", () => {
    expect(limit([])).toBeUndefined();
    expect(limit(["-l h_vmem=2G", "-q all.q"])).toBeUndefined();
    expect(limit(["-l my_mem_grab=2G", "-v mem_grab=2G"])).toBeUndefined();
  });

  it("refuses a mem_grab that is not a size, naming the option and the fix", () => {
    expect(() => limit(["-l mem_grab=2GB"])).toThrow(
      expect.objectContaining({
        code: "CONFIG_INVALID",
        detail: { option: "-l mem_grab=2GB" },
        message: expect.stringContaining('as in "-l mem_grab=2G"'),
      }),
    );
    expect(() => scheduler.checkOptions(["-l h_rt=1:0:0,mem_grab=lots"])).toThrow(
      /mem_grab="lots", which is not a size/,
    );
  });

  it("refuses every size it cannot read, never running without the limit asked for", () => {
    for (const size of ["2GB", "2.G", "2P", "2Gi", "G", "-1G", "1e9", "0", "0k", "0.0001", ""]) {
      const option = `-l h_rt=0:1:0,mem_grab=${size}`;
      for (const check of [() => limit([option]), () => scheduler.checkOptions([option])]) {
        expect(check, size).toThrow(
          expect.objectContaining({
            code: "CONFIG_INVALID",
            detail: { option },
            message: expect.stringMatching(/K, M, G or T.*powers of 1024/),
          }),
        );
      }
    }
  });

  it("never reads a size it cannot parse as no limit, even past checkOptions", () => {
    expect(() =>
      memGrabBytes([
        ["-l", "mem_grab=1G"],
        ["-l", "mem_grab=2GB"],
      ]),
    ).toThrow(
      expect.objectContaining({
        code: "CONFIG_INVALID",
        detail: { option: "-l mem_grab=2GB" },
      }),
    );
  });
});
