import { describe, expect, it } from "vitest";
import { ScriptedRemote } from "../__fixtures__/scripted-remote.js";
import { gridEngine } from "../grid-engine.js";

const GiB = 1024 ** 3;

describe("gridEngine memoryLimitBytes (-l mem_grab)", () => {
  const scheduler = gridEngine(new ScriptedRemote());
  const limit = (options: string[]) => scheduler.memoryLimitBytes(options);

  it("reads -l mem_grab the way GridEngine writes sizes", () => {
    expect(limit(["-l mem_grab=2G"])).toBe(2 * GiB);
    expect(limit(["-l mem_grab=2g"])).toBe(2e9);
    expect(limit(["-l mem_grab=500M"])).toBe(500 * 1024 ** 2);
    expect(limit(["-l mem_grab=300k"])).toBe(300_000);
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
    expect(limit(["-l mem_grab=1G,mem_grab=3g"])).toBe(3e9);
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
});
