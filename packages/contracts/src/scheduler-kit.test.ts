import { describe, expect, it } from "vitest";
import { SheepdogError } from "./errors.js";
import type { JobSpec } from "./scheduler.js";
import { checkJobRef, partTaskRuns, splitArray, submitParts } from "./scheduler-kit.js";

const spec: JobSpec = {
  name: "sheepdog_1_ab",
  tasks: 7,
  program: "",
  shell: "/usr/bin/python3",
  options: [],
  directory: ".sheepdog",
};

describe("splitArray", () => {
  it("cuts 1..tasks into runs of at most max", () => {
    expect(splitArray(7, 3)).toEqual([
      { firstTask: 1, lastTask: 3 },
      { firstTask: 4, lastTask: 6 },
      { firstTask: 7, lastTask: 7 },
    ]);
    expect(splitArray(2, 1000)).toEqual([{ firstTask: 1, lastTask: 2 }]);
  });
});

describe("partTaskRuns", () => {
  const job = {
    scheduler: "test",
    id: "10,11",
    tasks: 7,
    parts: [
      { jobId: "10", firstTask: 1, lastTask: 4 },
      { jobId: "11", firstTask: 5, lastTask: 7 },
    ],
    directory: ".sheepdog",
    name: "n",
  };
  const identity = { source: "test" };

  it("numbers each part's tasks as the part does, in runs, leaving out parts without any", () => {
    expect(partTaskRuns(job, [7, 2, 3, 5, 3], identity)).toEqual([
      { jobId: "10", runs: [{ first: 2, last: 3 }] },
      {
        jobId: "11",
        runs: [
          { first: 1, last: 1 },
          { first: 3, last: 3 },
        ],
      },
    ]);
    expect(partTaskRuns(job, [5, 6], identity)).toEqual([
      { jobId: "11", runs: [{ first: 1, last: 2 }] },
    ]);
    expect(partTaskRuns(job, [], identity)).toEqual([]);
  });

  it("refuses a number that is not one of the job's tasks, naming it", () => {
    for (const bad of [0, 8, 1.5, -1, Number.NaN, "2"]) {
      expect(() => partTaskRuns(job, [1, bad as number], identity)).toThrow(
        expect.objectContaining({
          code: "INVALID_INPUT",
          message: expect.stringContaining("1 to 7"),
        }),
      );
    }
    expect(() => partTaskRuns(job, "1" as unknown as number[], identity)).toThrow(
      expect.objectContaining({ code: "INVALID_INPUT" }),
    );
  });
});

describe("submitParts", () => {
  it("submits each part in order and names them in one JobRef", async () => {
    const job = await submitParts(spec, splitArray(7, 3), "test", {
      submit: async (_range, index) => String(100 + index),
      cancel: async () => {},
    });
    expect(job).toMatchObject({ scheduler: "test", id: "100,101,102", tasks: 7 });
    expect(job.parts.map((p) => [p.jobId, p.firstTask, p.lastTask])).toEqual([
      ["100", 1, 3],
      ["101", 4, 6],
      ["102", 7, 7],
    ]);
  });

  it("cancels the parts already queued when a later one is refused, then rejects", async () => {
    const cancelled: string[][] = [];
    const refusal = new Error("refused");
    const result = await submitParts(spec, splitArray(7, 3), "test", {
      submit: async (_range, index) => {
        if (index === 2) throw refusal;
        return String(100 + index);
      },
      cancel: async (ids) => {
        cancelled.push(ids);
      },
    }).catch((e: unknown) => e);
    expect(result).toBe(refusal);
    expect(cancelled).toEqual([["100", "101"]]);
  });
});

describe("checkJobRef", () => {
  const job = {
    scheduler: "test",
    id: "5",
    tasks: 2,
    parts: [{ jobId: "5", firstTask: 1, lastTask: 2 }],
    directory: ".sheepdog",
    name: "sheepdog_1_ab",
  };
  it("accepts a JobRef of its scheduler, and refuses anything that could reach a command", () => {
    expect(() => checkJobRef(job, { source: "test", title: "Test" })).not.toThrow();
    for (const bad of [
      { ...job, scheduler: "other" },
      { ...job, name: "x; rm -rf ~" },
      { ...job, parts: [{ jobId: "5 && id", firstTask: 1, lastTask: 2 }] },
      { ...job, parts: [{ jobId: "5", firstTask: 1, lastTask: 3 }] },
    ]) {
      const error = (() => {
        try {
          checkJobRef(bad, { source: "test", title: "Test" });
        } catch (e) {
          return e;
        }
      })();
      expect(SheepdogError.isInstance(error) && error.code).toBe("INVALID_INPUT");
    }
  });
});
