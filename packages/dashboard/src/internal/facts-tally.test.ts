import type { TaskFactsEntry } from "@sheepdog/contracts";
import { encode } from "@sheepdog/serialise";
import { describe, expect, it } from "vitest";
import { FactsTally } from "./facts-tally.js";
import { STATE } from "./task-states.js";

const done: TaskFactsEntry = { kind: "result", hasLog: false, startedAt: 1_000, endedAt: 3_000 };

describe("FactsTally", () => {
  it("reads in slices from the first task still without a report, skipping what came meanwhile", async () => {
    const tally = new FactsTally(30_000, 0);
    const reads: [number, number][] = [];
    await tally.catchUp(async (start, count) => {
      reads.push([start, count]);
      if (start === 0) {
        // While the first slice is read, the store tells of tasks 10,000 to 19,999.
        for (let index = 10_000; index < 20_000; index++) {
          tally.takeIn({ index, kind: "result", value: encode(index) });
        }
      }
      return Array.from({ length: count }, () => done);
    });
    expect(reads).toEqual([
      [0, 10_000],
      [20_000, 10_000],
    ]);
    expect(tally.reported).toBe(30_000);
    expect(tally.summary().timing?.histogram?.counts.reduce((a, b) => a + b)).toBe(20_000);
  });

  it("takes a report in once: neither a second report nor a read counts it again", () => {
    const tally = new FactsTally(2, 0);
    tally.takeIn({ index: 0, kind: "error", value: "boom", facts: { attempt: 2, host: "n1" } });
    tally.takeIn({ index: 0, kind: "result", value: encode(0) });
    tally.takeIn({ index: 5, kind: "result", value: encode(5) });
    expect(Array.from(tally.states)).toEqual([STATE.error, STATE.pending]);
    expect(tally.reported).toBe(1);
    expect(tally.attempts.errors).toEqual(new Map([[2, 1]]));
  });

  it("keeps the ten slowest runs, slowest first, the first of equal runs ahead", () => {
    const tally = new FactsTally(30, 0);
    // Runs of 0.5 to 14.5 s in a shuffled order, and 7.5 s twice (tasks 3 and 20).
    const seconds = [3, 14, 9, 7, 0, 12, 5, 11, 1, 13, 8, 2, 10, 6, 4, 7];
    seconds.forEach((s, i) => {
      const index = i === 15 ? 20 : i;
      tally.add(index, "result", { startedAt: 0, endedAt: (s + 0.5) * 1000, host: `n${index}` });
    });
    const slowest = tally.summary().timing?.slowest ?? [];
    expect(slowest.map((run) => [run.index, run.runSeconds])).toEqual([
      [1, 14.5],
      [9, 13.5],
      [5, 12.5],
      [7, 11.5],
      [12, 10.5],
      [2, 9.5],
      [10, 8.5],
      [3, 7.5],
      [20, 7.5],
      [13, 6.5],
    ]);
    expect(slowest[0]?.host).toBe("n1");
  });
});
