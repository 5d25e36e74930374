import { describe, expect, it } from "vitest";
import { SheepdogError } from "./errors.js";
import {
  clockTime,
  parseDuration,
  parseResources,
  parseSize,
  resourcesForTask,
} from "./resources.js";

describe("parseSize", () => {
  it("reads bytes and K/M/G/T as powers of 1024, case-insensitive, with an optional B", () => {
    expect(parseSize("512M")).toBe(512 * 1024 ** 2);
    expect(parseSize("4g")).toBe(4 * 1024 ** 3);
    expect(parseSize("1.5GB")).toBe(1.5 * 1024 ** 3);
    expect(parseSize("2GiB")).toBe(2 * 1024 ** 3);
    expect(parseSize("1T")).toBe(1024 ** 4);
    expect(parseSize("3k")).toBe(3072);
    expect(parseSize(1000)).toBe(1000);
  });
  it("refuses what is not a size", () => {
    for (const bad of ["", "G", "4X", "-1G", "0", "4 G B", "1e9"])
      expect(parseSize(bad)).toBeUndefined();
    expect(parseSize(0)).toBeUndefined();
    expect(parseSize(Number.NaN)).toBeUndefined();
  });
});

describe("parseDuration", () => {
  it("reads clock times, units and seconds", () => {
    expect(parseDuration("1:00:00")).toBe(3600);
    expect(parseDuration("0:01:30")).toBe(90);
    expect(parseDuration("30:00")).toBe(1800);
    expect(parseDuration("1-12:00:00")).toBe(36 * 3600);
    expect(parseDuration("90s")).toBe(90);
    expect(parseDuration("2h")).toBe(7200);
    expect(parseDuration("1.5m")).toBe(90);
    expect(parseDuration("45")).toBe(45);
    expect(parseDuration(12.2)).toBe(13);
  });
  it("refuses what is not a duration", () => {
    for (const bad of ["", "1:2:3:4", "0:00:60", "1:60:00", "abc", "0", "-5", "1w"]) {
      expect(parseDuration(bad), bad).toBeUndefined();
    }
  });
});

describe("parseResources", () => {
  it("reads each field", () => {
    expect(parseResources({ memory: "4G", time: "1:00:00", cpus: 2, queue: "short" })).toEqual({
      memoryBytes: 4 * 1024 ** 3,
      timeSeconds: 3600,
      cpus: 2,
      queue: "short",
    });
    expect(parseResources(undefined)).toEqual({});
  });
  it("names the field and the fix for each bad value", () => {
    const cases: [unknown, RegExp][] = [
      [{ memory: "4 gigs" }, /resources\.memory must be a size such as "512M"/],
      [{ time: "an hour" }, /resources\.time must be a duration such as "1:00:00"/],
      [{ cpus: 1.5 }, /resources\.cpus must be a whole number/],
      [{ queue: "all.q; rm -rf ~" }, /resources\.queue must be a queue or partition name/],
      [{ mem: "4G" }, /has no field "mem": it takes memory, time, cpus, queue/],
      ["4G", /must be an object/],
    ];
    for (const [value, message] of cases) {
      const error = (() => {
        try {
          parseResources(value);
        } catch (e) {
          return e;
        }
      })();
      expect(SheepdogError.isInstance(error) && error.code).toBe("CONFIG_INVALID");
      expect((error as Error).message).toMatch(message);
    }
  });
});

describe("resourcesForTask", () => {
  it("scales the time by the calls a task runs, and nothing else", () => {
    const perCall = { memoryBytes: 1024, timeSeconds: 60, cpus: 2, queue: "q" };
    expect(resourcesForTask(perCall, 5)).toEqual({ ...perCall, timeSeconds: 300 });
    expect(resourcesForTask({ memoryBytes: 1 }, 5)).toEqual({ memoryBytes: 1 });
  });
});

describe("clockTime", () => {
  it("writes H:MM:SS, rounding up and never 0", () => {
    expect(clockTime(3600)).toBe("1:00:00");
    expect(clockTime(90.2)).toBe("0:01:31");
    expect(clockTime(0)).toBe("0:00:01");
    expect(clockTime(30 * 3600)).toBe("30:00:00");
  });
});
