import { describe, expect, it } from "vitest";
import { pendingRanges } from "./facts-tally.js";
import { STATE, stateRuns } from "./task-states.js";

/** The states the runs stand for, one character per task (as page/task-grid.js reads them). */
function statesOfRuns(runs: string): string {
  return [...runs.matchAll(/([.dex])(\d*)/g)]
    .map(([, state, length]) => (state as string).repeat(length ? Number(length) : 1))
    .join("");
}

function statesOf(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

describe("state runs", () => {
  it("count each state's run, leaving out a count of one, and give the states back", () => {
    const text = `${"d".repeat(1000)}${".".repeat(24)}exxd`;
    expect(stateRuns(statesOf(text))).toBe("d1000.24ex2d");
    expect(statesOfRuns("d1000.24ex2d")).toBe(text);
    expect(stateRuns(new Uint8Array(0))).toBe("");
  });

  it("are never longer than one character per task", () => {
    const alternating = "de".repeat(500);
    expect(stateRuns(statesOf(alternating))).toBe(alternating);
  });
});

describe("pendingRanges", () => {
  it("covers every task without a report, taking close runs together", () => {
    const states = statesOf(`dd..d${"d".repeat(20)}...d.`);
    expect(pendingRanges(states, 0)).toEqual([
      { start: 2, count: 2 },
      { start: 25, count: 3 },
      { start: 29, count: 1 },
    ]);
    expect(pendingRanges(states, 10)).toEqual([
      { start: 2, count: 2 },
      { start: 25, count: 5 },
    ]);
    expect(pendingRanges(states.fill(STATE.done), 10)).toEqual([]);
  });
});
