import type { Store } from "@sheepdog/contracts";
import { encode } from "@sheepdog/serialise";
import { sqliteStore } from "@sheepdog/store-sqlite";
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { createRequest, temporaryStore, traceback } from "../__fixtures__/requests.js";
import type { RequestDetail } from "./api-types.js";
import { RequestDetails } from "./request-details.js";
import { RequestRows } from "./request-rows.js";
import { RequestWatch } from "./request-watch.js";

let store: ReturnType<typeof temporaryStore>;
let watch: RequestWatch;
let factsReads: number;
/** How many reports the reads of facts read back. */
let reportsReadBack: number;
let details: RequestDetails;
/** The store as the dashboard sees it: its reads of facts counted. */
let counted: Store;

beforeEach(() => {
  store = temporaryStore();
  factsReads = 0;
  reportsReadBack = 0;
  // The real store, with its reads of every task's facts counted.
  counted = Object.create(store);
  counted.getTaskFacts = async (...args) => {
    factsReads++;
    const entries = await store.getTaskFacts(...args);
    reportsReadBack += entries.filter((entry) => entry !== null).length;
    return entries;
  };
  watch = new RequestWatch(counted, 60_000, (error) => {
    throw error;
  });
  const frozen = () => 0;
  details = new RequestDetails(counted, watch, new RequestRows(counted, watch), frozen);
});

afterEach(async () => {
  watch.close();
  await store.dispose();
});

describe("a request's task view", () => {
  it("is sent whole only when its version is not the one asked with", async () => {
    const id = await createRequest(store, "divide", 4);
    await store.putResult(id, 0, encode(0));
    const first = (await details.detail(id, Date.now())) as RequestDetail;
    expect(first).toMatchObject({ unchanged: false, stateRuns: "d.3" });
    const same = await details.detail(id, Date.now(), first.viewVersion);
    expect(same).toMatchObject({ unchanged: true, viewVersion: first.viewVersion });
    expect(same).not.toHaveProperty("stateRuns");
    expect(same).not.toHaveProperty("errors");
    // Fresh counts in every answer, while the young view is reused.
    await store.putResult(id, 1, encode(1));
    const counted = await details.detail(id, Date.now(), first.viewVersion);
    expect(counted).toMatchObject({ unchanged: true, request: { done: 2, pending: 2 } });
    expect(await details.detail(id, Date.now(), "another")).toMatchObject({
      unchanged: false,
      viewVersion: first.viewVersion,
      stateRuns: "d.3",
    });
  });

  it("takes a new error in by reading the errors only, not every task's facts again", async () => {
    const id = await createRequest(store, "divide", 4);
    await store.putResult(id, 0, encode(0));
    const first = (await details.detail(id, Date.now())) as RequestDetail;
    expect(factsReads).toBeGreaterThan(0);
    const readsBefore = factsReads;
    await store.putError(id, 2, traceback("ValueError", "math domain error"));
    const next = await details.detail(id, Date.now(), first.viewVersion);
    expect(next.unchanged).toBe(false);
    expect(next.viewVersion).not.toBe(first.viewVersion);
    expect(next).toMatchObject({
      stateRuns: "d.e.",
      errors: [{ type: "ValueError", message: "math domain error", count: 1, indices: [2] }],
    });
    expect(factsReads).toBe(readsBefore);
    expect((await details.task(id, 2)).error).toContain("ValueError: math domain error");
    // A finished request's view is read once more, for its final states.
    await store.putResult(id, 1, encode(1));
    await store.putResult(id, 3, encode(3));
    expect(await details.detail(id, Date.now())).toMatchObject({ stateRuns: "d2ed" });
    expect(factsReads).toBeGreaterThan(readsBefore);
  });

  it("takes in the reports its store stores in this process, and reads back only others'", async () => {
    let clock = 0;
    const fed = new RequestDetails(counted, watch, new RequestRows(counted, watch), () => clock);
    const id = await createRequest(store, "divide", 4);
    await store.putResult(id, 0, encode(0));
    expect(await fed.detail(id, Date.now())).toMatchObject({ stateRuns: "d.3" });
    expect(reportsReadBack).toBe(1);
    const facts = { startedAt: 1_000, endedAt: 3_500, host: "node7", attempt: 1 };
    await store.putReports(id, [
      { index: 1, kind: "result", value: encode(1), facts },
      { index: 2, kind: "error", value: "Traceback...\nValueError: x", facts },
    ]);
    clock += 60_000;
    const taken = (await fed.detail(id, Date.now())) as RequestDetail;
    expect(taken).toMatchObject({ stateRuns: "d2e." });
    expect(taken.timing?.slowest).toEqual([
      { index: 1, runSeconds: 2.5, host: "node7", peakMemoryBytes: null, attempt: 1 },
      { index: 2, runSeconds: 2.5, host: "node7", peakMemoryBytes: null, attempt: 1 },
    ]);
    expect(reportsReadBack).toBe(1);
    // Another store object on the same file (another process, say) is not heard: read back.
    const other = sqliteStore({ dbfile: store.file });
    try {
      await other.putResult(id, 3, encode(3));
    } finally {
      await other.close();
    }
    clock += 60_000;
    expect(await fed.detail(id, Date.now())).toMatchObject({ stateRuns: "d2ed" });
    expect(reportsReadBack).toBe(2);
    fed.close();
  });

  it("answers with every error the counts name, even when a read of fewer is under way", async () => {
    const id = await createRequest(store, "divide", 4);
    await store.putError(id, 0, traceback("ZeroDivisionError", "division by zero"));
    const slowErrors: Store = Object.create(store);
    let letErrorsRead = () => {};
    const errorsGate = new Promise<void>((resolve) => {
      letErrorsRead = resolve;
    });
    slowErrors.getErrors = async (...args) => {
      const errors = await store.getErrors(...args);
      await errorsGate;
      return errors;
    };
    const slowDetails = new RequestDetails(
      slowErrors,
      watch,
      new RequestRows(slowErrors, watch),
      () => 0,
    );
    const first = slowDetails.detail(id, Date.now());
    await new Promise((resolve) => setTimeout(resolve, 20));
    await store.putError(id, 1, traceback("ValueError", "math domain error"));
    const second = slowDetails.detail(id, Date.now());
    await new Promise((resolve) => setTimeout(resolve, 20));
    letErrorsRead();
    expect(await first).toMatchObject({ request: { failed: 1 }, errors: [{ count: 1 }] });
    const after = (await second) as RequestDetail;
    expect(after.request.failed).toBe(2);
    expect(after.errors?.map((group) => group.type).sort()).toEqual([
      "ValueError",
      "ZeroDivisionError",
    ]);
  });
});

describe("a request's facts", () => {
  it("are read again only for the tasks that had no report, and whole only after a retry", async () => {
    // Written by another store object on the file (another process): read back, not heard.
    const elsewhere = sqliteStore({ dbfile: store.file });
    onTestFinished(() => elsewhere.close());
    const ranges: [number, number][] = [];
    const watched: Store = Object.create(store);
    watched.getTaskFacts = (id, start = 0, count = 0) => {
      ranges.push([start, count]);
      return store.getTaskFacts(id, start, count);
    };
    let clock = 0;
    const rows = new RequestRows(watched, watch);
    const reading = new RequestDetails(watched, watch, rows, () => clock);
    const id = await createRequest(store, "divide", 10_000);
    const ended = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => ({
        index: from + i,
        kind: "result" as const,
        value: encode(from + i),
        facts: { startedAt: 1_000, endedAt: 2_000 + from + i },
      }));
    await elsewhere.putReports(id, ended(0, 5_000));
    const first = (await reading.detail(id, Date.now())) as RequestDetail;
    expect(first.stateRuns).toBe("d5000.5000");
    expect(ranges).toEqual([[0, 10_000]]);
    await elsewhere.putReports(id, ended(5_000, 8_000));
    // A meta written for anything but a retry (the job, once submitted) keeps the tally.
    await elsewhere.updateMeta(id, { job: { scheduler: "slurm", id: "77", tasks: 10_000 } });
    clock += 60_000;
    const second = (await reading.detail(id, Date.now())) as RequestDetail;
    expect(second.stateRuns).toBe("d8000.2000");
    expect(ranges.slice(1)).toEqual([[5_000, 5_000]]);
    expect(second.timing?.histogram?.counts.reduce((a, b) => a + b)).toBe(8_000);
    // A retry writes the meta, then resets its tasks: the tally starts again from every task.
    await elsewhere.updateMeta(id, { retryTasks: [[0, 1]] });
    await elsewhere.resetTasks(id, [0]);
    await elsewhere.putReports(id, ended(8_000, 8_002));
    clock += 60_000;
    const third = (await reading.detail(id, Date.now())) as RequestDetail;
    expect(third.stateRuns).toBe(".d8001.1998");
    expect(ranges.slice(2)).toEqual([[0, 10_000]]);
  });
});
