import { describe, expect, it } from "vitest";
import { forEachTask, parseTaskList } from "./task-ranges.js";

function expand(text: string, from = 1, to = 1_000): number[] {
  const ranges = parseTaskList(text);
  if (!ranges) throw new Error(`unparsed ${text}`);
  const tasks: number[] = [];
  forEachTask(ranges, from, to, (task) => tasks.push(task));
  return tasks;
}

describe("parseTaskList", () => {
  it("reads the forms qstat prints: one task, a range with a step, and comma lists", () => {
    expect(expand("7")).toEqual([7]);
    expect(expand("5-10:1")).toEqual([5, 6, 7, 8, 9, 10]);
    expect(expand("9,10")).toEqual([9, 10]);
    expect(expand("1-3:1,7,9-15:2")).toEqual([1, 2, 3, 7, 9, 11, 13, 15]);
  });

  it("keeps only the tasks within the asked range, honouring the step", () => {
    expect(expand("1-20:3", 5, 14)).toEqual([7, 10, 13]);
    expect(expand("1001-75000:1", 74_998, 80_000)).toEqual([74_998, 74_999, 75_000]);
  });

  it("refuses what is not a task list", () => {
    for (const text of ["", "a", "5-3:1", "1-3:0", "1-", "1,,2"]) {
      expect(parseTaskList(text)).toBeUndefined();
    }
  });
});
