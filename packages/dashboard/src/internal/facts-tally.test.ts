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
});
