import { describe, expect, it } from "vitest";
import { SheepdogError } from "../errors.js";
import type { TaskLayout } from "./task-layout.js";
import {
  indexRuns,
  layoutOf,
  retryChunks,
  taskCount,
  taskIndices,
  taskRange,
} from "./task-layout.js";

describe("layoutOf", () => {
  it("reads chunkSize and retryTasks from the meta", () => {
    expect(layoutOf({ chunkSize: 3, retryTasks: [[1, 4], [6]] }, 7)).toEqual({
      tasks: 7,
      chunkSize: 3,
      retryTasks: [[1, 4], [6]],
    });
  });

  it("counts a chunk size that is not a positive integer as 1", () => {
    for (const chunkSize of [undefined, 0, -2, 1.5, "3", Number.NaN, 2 ** 60]) {
      expect(layoutOf({ chunkSize }, 5).chunkSize).toBe(1);
    }
  });

  it("counts retry tasks of the wrong shape as none, so no task gets wrong arguments", () => {
    const damaged: unknown[] = [
      "[[1]]",
      [[]],
      [[2, 1]],
      [[1, 1]],
      [[0, 5]],
      [[-1]],
      [[0.5]],
      [[1], "2"],
      [[1], [null]],
    ];
    for (const retryTasks of damaged) {
      expect(layoutOf({ retryTasks }, 5).retryTasks).toEqual([]);
    }
  });
});

describe("claims", () => {
  it("reads the claimed chunk tasks from the meta, leaving out entries of another shape", () => {
    const meta = {
      chunkSize: 2,
      retryTasks: [[1]],
      claims: { "3": 1, "4": 2, "0": 1, "5": 1, "2": 2, "1": 5, x: 1, "1.5": 1, "4.0": "1" },
    };
    // Chunk tasks are 1 to 4 (8 arguments in chunks of 2); 5 is the retry task.
    const layout = layoutOf(meta, 8);
    expect(layout.claims).toEqual(
      new Map([
        [3, 1],
        [4, 2],
      ]),
    );
    expect(layoutOf({ claims: {} }, 8).claims).toEqual(new Map());
    for (const claims of [undefined, null, [], "{}", 3]) {
      expect(layoutOf({ claims }, 8)).not.toHaveProperty("claims");
    }
  });

  it("counts a claimed task's arguments as its holder's, not its own array task's", () => {
    const layout: TaskLayout = {
      tasks: 8,
      chunkSize: 2,
      retryTasks: [[1, 6]],
      claims: new Map([
        [3, 1],
        [4, 1],
      ]),
    };
    expect(taskIndices(layout, 1)).toEqual([0, 1, 4, 5, 6, 7]);
    expect(taskIndices(layout, 2)).toEqual([2, 3]);
    expect(taskIndices(layout, 3)).toEqual([]);
    expect(taskIndices(layout, 4)).toEqual([]);
    expect(taskIndices(layout, 5)).toEqual([1, 6]);
    // The ranges served to workers do not change: a holder fetches and posts as the task.
    expect(taskRange(layout, 3)).toEqual({ first: 4, count: 2 });
  });
});

describe("taskCount, taskRange, taskIndices", () => {
  const layout: TaskLayout = { tasks: 7, chunkSize: 3, retryTasks: [[1, 4], [6]] };

  it("has ceil(tasks / chunkSize) chunks, then the retry tasks", () => {
    expect(taskCount(layout)).toBe(5);
    expect(taskCount({ tasks: 0, chunkSize: 4, retryTasks: [] })).toBe(0);
    expect(taskCount({ tasks: 8, chunkSize: 4, retryTasks: [] })).toBe(2);
  });

  it("gives each chunk its consecutive arguments, the last one the rest", () => {
    expect(taskRange(layout, 1)).toEqual({ first: 0, count: 3 });
    expect(taskRange(layout, 3)).toEqual({ first: 6, count: 1 });
    expect(taskIndices(layout, 2)).toEqual([3, 4, 5]);
    expect(taskIndices(layout, 3)).toEqual([6]);
  });

  it("gives a retry task its listed indices", () => {
    expect(taskRange(layout, 4)).toEqual({ first: 1, count: 2, indices: [1, 4] });
    expect(taskIndices(layout, 5)).toEqual([6]);
  });

  it("knows no task 0, none past the end, and none that is not an integer", () => {
    for (const task of [0, -1, 6, 1.5, Number.NaN]) {
      expect(taskRange(layout, task)).toBeUndefined();
      expect(taskIndices(layout, task)).toEqual([]);
    }
  });

  it("covers every argument exactly once with its chunks", () => {
    for (const [tasks, chunkSize] of [
      [1, 1],
      [10, 3],
      [12, 4],
      [5, 9],
    ] as const) {
      const plain: TaskLayout = { tasks, chunkSize, retryTasks: [] };
      const covered: number[] = [];
      for (let task = 1; task <= taskCount(plain); task++) {
        covered.push(...taskIndices(plain, task));
      }
      expect(covered).toEqual(Array.from({ length: tasks }, (_, i) => i));
    }
  });
});

describe("retryChunks", () => {
  it("splits sorted, distinct indices into lists of up to chunkSize", () => {
    expect(retryChunks([7, 2, 3, 2, 9], 2)).toEqual([
      [2, 3],
      [7, 9],
    ]);
    expect(retryChunks([5, 1], 10)).toEqual([[1, 5]]);
    expect(retryChunks([], 3)).toEqual([]);
  });

  it("makes lists that layoutOf accepts as retry tasks", () => {
    const retryTasks = retryChunks([9, 0, 4, 5, 6], 2);
    expect(layoutOf({ retryTasks }, 10).retryTasks).toEqual(retryTasks);
  });

  it("refuses a chunk size that is not a positive integer", () => {
    for (const chunkSize of [0, -1, 1.5, Number.NaN]) {
      let caught: unknown;
      try {
        retryChunks([1], chunkSize);
      } catch (error) {
        caught = error;
      }
      expect(SheepdogError.isInstance(caught) && caught.code).toBe("INVALID_INPUT");
    }
  });
});

describe("indexRuns", () => {
  it("groups consecutive indices into runs, in order", () => {
    expect(indexRuns([1, 2, 3, 7, 9, 10])).toEqual([
      { first: 1, count: 3 },
      { first: 7, count: 1 },
      { first: 9, count: 2 },
    ]);
    expect(indexRuns([4])).toEqual([{ first: 4, count: 1 }]);
    expect(indexRuns([])).toEqual([]);
  });

  it("starts a new run wherever the next index is not one more", () => {
    expect(indexRuns([3, 2, 2, 5])).toEqual([
      { first: 3, count: 1 },
      { first: 2, count: 1 },
      { first: 2, count: 1 },
      { first: 5, count: 1 },
    ]);
  });
});
