import type { JobRef, RequestId, Scheduler, Store, TaskState } from "@sheepdog/contracts";
import { memoryStore } from "@sheepdog/contracts/testing";
import { describe, expect, it } from "vitest";
import type { WaitOptions } from "./wait.js";
import { waitForRequest } from "./wait.js";

const job: JobRef = {
  scheduler: "scripted",
  id: "7",
  tasks: 2,
  parts: [{ jobId: "7", firstTask: 1, lastTask: 2 }],
  directory: ".sheepdog",
  name: "sheepdog_1_abcd",
};

/**
 * A scheduler whose `status` answers from a script, one entry per call (the last repeats),
 * running `onCall` first: GridEngine's states without GridEngine, to pin down the timing rules.
 */
function scripted(
  script: Record<number, TaskState>[],
  onCall: (call: number) => Promise<void> | void = () => {},
) {
  let calls = 0;
  const cancels: JobRef[] = [];
  const scheduler: Scheduler = {
    name: "scripted",
    async submit() {
      return job;
    },
    async status() {
      const call = calls++;
      await onCall(call);
      const states = script[Math.min(call, script.length - 1)] ?? {};
      return new Map(Object.entries(states).map(([task, state]) => [Number(task), state]));
    },
    async cancel(ref) {
      cancels.push(ref);
    },
  };
  return { scheduler, cancels, calls: () => calls };
}

async function newRequest(tasks: number) {
  const store = memoryStore();
  const { id } = await store.createRequest({
    func: new Uint8Array(),
    ns: new Uint8Array(),
    args: Array.from({ length: tasks }, () => new Uint8Array([0x80, 4, 0x29, 0x2e])),
  });
  return { store, id };
}

const result = new Uint8Array([0x80, 4, 0x4b, 1, 0x2e]);
const killed: TaskState = {
  state: "finished",
  kind: "signal",
  exitCode: null,
  signal: 9,
  reason: "killed by signal 9 (SIGKILL)",
};
const timing = {
  countIntervalMs: 5,
  statusIntervalMs: 5,
  maxStatusIntervalMs: 5,
  reportGraceMs: 30,
  unknownGraceMs: 60,
};

/** A request of one task, as a wait sees it. */
const oneTask = {
  tasks: 1,
  layout: { tasks: 1, chunkSize: 1, retryTasks: [] },
  job: { ...job, tasks: 1, parts: [{ jobId: "7", firstTask: 1, lastTask: 1 }] },
};

/** A wait on request `id`'s one task, scripted by `scheduler`, to be stopped by its controller. */
function waitOnOneTask(
  store: Store,
  id: RequestId,
  scheduler: Scheduler,
  options: Partial<WaitOptions>,
) {
  const controller = new AbortController();
  const waiting = waitForRequest({
    store,
    request: id,
    ...oneTask,
    scheduler,
    ...timing,
    ...options,
    signal: controller.signal,
  }).catch((error: unknown) => error);
  return { controller, waiting };
}

describe("waitForRequest", () => {
  it("counts a task that reports twice (a -r y re-run) once, and cancels the re-run left over", async () => {
    const { store, id } = await newRequest(2);
    const finished: TaskState = {
      state: "finished",
      kind: "exit",
      exitCode: 0,
      signal: null,
      reason: "exited",
    };
    const { scheduler, cancels } = scripted(
      [
        { 1: { state: "running" }, 2: { state: "running" } },
        { 1: finished, 2: { state: "running" } },
        // GridEngine reschedules task 1 (Rq), then runs it again.
        { 1: { state: "queued" }, 2: { state: "running" } },
        { 1: { state: "running" }, 2: { state: "running" } },
      ],
      async (call) => {
        if (call === 0) expect(await store.putResult(id, 0, result)).toBe(true);
        if (call === 3) expect(await store.putResult(id, 0, result)).toBe(false);
        if (call === 6) expect(await store.putResult(id, 1, result)).toBe(true);
      },
    );
    const progress: number[] = [];
    const final = await waitForRequest({
      store,
      request: id,
      tasks: 2,
      layout: { tasks: 2, chunkSize: 1, retryTasks: [] },
      scheduler,
      job,
      ...timing,
      onProgress: (p) => progress.push(p.results + p.errors),
    });
    expect(final).toMatchObject({ tasks: 2, results: 2, errors: 0 });
    expect(Math.max(...progress)).toBe(2);
    // Task 1's re-run was still queued or running: it is cancelled, not left to report again.
    expect(cancels).toEqual([job]);
  });

  it("ends when the last report comes while the scheduler is being asked, without its answer", async () => {
    const { store, id } = await newRequest(1);
    let wake = () => {};
    // The status round that is under way when the last report comes never answers.
    const { scheduler } = scripted([{ 1: { state: "running" } }], async () => {
      await store.putResult(id, 0, result);
      wake();
      await new Promise(() => {});
    });
    const progress = await waitForRequest({
      store,
      request: id,
      ...oneTask,
      scheduler,
      ...timing,
      subscribe: (listener) => {
        wake = listener;
        return () => {};
      },
    });
    expect(progress).toMatchObject({ results: 1, tasks: 1 });
  });

  it("ends when the last report comes between two sleeps, not an interval later", async () => {
    const { store, id } = await newRequest(1);
    let wake = () => {};
    const { scheduler } = scripted([{ 1: { state: "running" } }]);
    scheduler.cancelTasks = async () => {};
    const progress = await waitForRequest({
      store,
      request: id,
      ...oneTask,
      layout: { ...oneTask.layout, claims: new Map() },
      scheduler,
      ...timing,
      // A wake lost outside the sleep would leave the wait asleep for a minute.
      countIntervalMs: 60_000,
      idleTasks: async () => {
        await store.putResult(id, 0, result);
        wake();
        return [];
      },
      subscribe: (listener) => {
        wake = listener;
        return () => {};
      },
    });
    expect(progress).toMatchObject({ results: 1, tasks: 1 });
  });

  it("does not settle a task that leaves qstat and comes back (rescheduled), only how it ends", async () => {
    const { store, id } = await newRequest(1);
    const script: Record<number, TaskState>[] = [
      ...Array.from({ length: 3 }, () => ({ 1: { state: "unknown" } as TaskState })),
      { 1: { state: "queued" } },
      ...Array.from({ length: 40 }, () => ({ 1: { state: "running" } as TaskState })),
      { 1: { state: "unknown" } },
      { 1: killed },
    ];
    // Paced calls: the first unknown spell (about 30 ms) stays under the unknown grace
    // (200 ms), the whole script runs well past it: a grace counted from the first spell would
    // settle the task as lost before it ran again.
    const { scheduler } = scripted(script, () => new Promise((r) => setTimeout(r, 5)));
    const died: number[][] = [];
    const final = await waitForRequest({
      store,
      request: id,
      ...oneTask,
      scheduler,
      ...timing,
      unknownGraceMs: 200,
      onDied: (indices) => died.push([...indices]),
    });
    expect(final).toMatchObject({ results: 0, errors: 1 });
    const [error] = await store.getErrors(id);
    expect(error?.error).toContain("killed by signal 9 (SIGKILL)");
    expect(died).toEqual([[0]]);
  });

  it("settles a retry job's tasks by the request's task numbers (taskOffset, retryTasks)", async () => {
    const { store, id } = await newRequest(5);
    for (const index of [0, 1, 2]) await store.putResult(id, index, result);
    const held: TaskState = { state: "queued", error: 'unable to find shell "/x"' };
    // The retry job's task 1 is the request's task 6 (5 chunks of 1): arguments 3 and 4.
    const { scheduler, cancels } = scripted([{ 1: held }]);
    const final = await waitForRequest({
      store,
      request: id,
      tasks: 5,
      layout: { tasks: 5, chunkSize: 1, retryTasks: [[3, 4]] },
      taskOffset: 5,
      attempt: 2,
      scheduler,
      job: { ...job, tasks: 1, parts: [{ jobId: "8", firstTask: 1, lastTask: 1 }] },
      ...timing,
    });
    expect(final).toMatchObject({ results: 3, errors: 2, attempt: 2 });
    expect((await store.getErrors(id)).map((e) => e.index)).toEqual([3, 4]);
    expect(cancels).toHaveLength(1);
  });
});

describe("claimed tasks (layout.claims)", () => {
  const exited: TaskState = {
    state: "finished",
    kind: "exit",
    exitCode: 0,
    signal: null,
    reason: "exited",
  };
  const fourTasks = { ...job, tasks: 4, parts: [{ jobId: "7", firstTask: 1, lastTask: 4 }] };

  /**
   * Four tasks of one argument each; task 1 claimed task 3's (its own array task then found it
   * held and ended at once) and was killed; tasks 2 and 4 reported. The errors, by index.
   */
  async function killedHolder(options: Partial<WaitOptions>, meta: Record<string, unknown> = {}) {
    const { store, id } = await newRequest(4);
    await store.updateMeta(id, meta);
    const { scheduler } = scripted(
      [
        { 1: { state: "running" }, 2: { state: "running" }, 3: exited, 4: { state: "running" } },
        { 1: killed, 2: exited, 3: exited, 4: exited },
      ],
      async (call) => {
        if (call === 0) {
          await store.putResult(id, 1, result);
          await store.putResult(id, 3, result);
        }
      },
    );
    await waitForRequest({
      store,
      request: id,
      tasks: 4,
      layout: { tasks: 4, chunkSize: 1, retryTasks: [], claims: new Map() },
      scheduler,
      job: fourTasks,
      ...timing,
      ...options,
    });
    return new Map((await store.getErrors(id)).map((e) => [e.index, e.error]));
  }

  it("records a claimed task's arguments as its holder's when the holder dies, not its own task's", async () => {
    const settled: number[] = [];
    const errors = await killedHolder({
      settleClaims: async (task) => {
        settled.push(task);
        return new Map([[3, 1]]);
      },
    });
    expect([...errors.keys()].sort()).toEqual([0, 2]);
    expect(errors.get(2)).toContain("Task 1 of job 7");
    expect(errors.get(2)).toContain("SIGKILL");
    expect(settled.sort()).toEqual([1, 2, 3, 4]);
  });

  it("reads the claims from the request's meta when no server tells them", async () => {
    const errors = await killedHolder({}, { claims: { "3": 1 } });
    expect([...errors.keys()].sort()).toEqual([0, 2]);
    expect(errors.get(2)).toContain("Task 1 of job 7");
  });

  it("cancels the job once every argument is in, when tasks claim: a later task may start yet", async () => {
    for (const claims of [new Map<number, number>(), undefined]) {
      const { store, id } = await newRequest(4);
      // Tasks 1 and 2 ran all four arguments (they claimed 3 and 4); 3 and 4 have just started.
      const { scheduler, cancels } = scripted(
        [{ 1: exited, 2: exited, 3: { state: "running" }, 4: { state: "running" } }],
        async (call) => {
          if (call === 0)
            for (const index of [0, 1, 2, 3]) await store.putResult(id, index, result);
        },
      );
      await waitForRequest({
        store,
        request: id,
        tasks: 4,
        layout: { tasks: 4, chunkSize: 1, retryTasks: [], ...(claims && { claims }) },
        scheduler,
        job: fourTasks,
        ...timing,
      });
      // Without claims, a task seen running is ending after its last report: no cancel.
      expect(cancels).toHaveLength(claims ? 1 : 0);
    }
  });

  it("cancels the tasks left without work once, and so not the job once every argument is in", async () => {
    for (const failFirst of [false, true]) {
      const { store, id } = await newRequest(4);
      // Tasks 1 and 2 claimed 3 and 4, whose array tasks wait for a slot; the scheduler goes on
      // saying so, as its answer may lag behind the cancel.
      const waiting = { 1: { state: "running" }, 2: { state: "running" } } as const;
      const { scheduler, cancels } = scripted(
        [{ ...waiting, 3: { state: "queued" }, 4: { state: "queued" } }],
        async (call) => {
          if (call === 2) {
            for (const index of [0, 1, 2, 3]) await store.putResult(id, index, result);
          }
        },
      );
      const cancelled: number[][] = [];
      scheduler.cancelTasks = async (_job, tasks) => {
        cancelled.push([...tasks]);
        if (failFirst && cancelled.length === 1) throw new Error("the connection dropped");
      };
      await waitForRequest({
        store,
        request: id,
        tasks: 4,
        layout: {
          tasks: 4,
          chunkSize: 1,
          retryTasks: [],
          claims: new Map([
            [3, 1],
            [4, 2],
          ]),
        },
        idleTasks: async () => [3, 4],
        scheduler,
        job: fourTasks,
        ...timing,
      });
      // A cancel that failed is tried again the next round.
      expect(cancelled).toEqual(
        failFirst
          ? [
              [3, 4],
              [3, 4],
            ]
          : [[3, 4]],
      );
      expect(cancels).toHaveLength(0);
    }
  });

  it("cancels the job at its end when no task was found idle, or the scheduler cannot cancel some", async () => {
    for (const canCancelTasks of [true, false]) {
      const { store, id } = await newRequest(4);
      const { scheduler, cancels } = scripted(
        [{ 1: { state: "running" }, 2: { state: "running" }, 3: { state: "queued" }, 4: exited }],
        async (call) => {
          if (call === 1) {
            for (const index of [0, 1, 2, 3]) await store.putResult(id, index, result);
          }
        },
      );
      const cancelled: number[][] = [];
      if (canCancelTasks) {
        scheduler.cancelTasks = async (_job, tasks) => {
          cancelled.push([...tasks]);
        };
      }
      await waitForRequest({
        store,
        request: id,
        tasks: 4,
        layout: { tasks: 4, chunkSize: 1, retryTasks: [], claims: new Map([[3, 1]]) },
        idleTasks: async () => (canCancelTasks ? [] : [3]),
        scheduler,
        job: fourTasks,
        ...timing,
      });
      expect(cancelled).toEqual([]);
      expect(cancels).toHaveLength(1);
    }
  });

  it("records each task's own arguments when nothing was claimed", async () => {
    const errors = await killedHolder({ settleClaims: async () => new Map() });
    expect([...errors.keys()].sort()).toEqual([0, 2]);
    // Task 3 ended having run nothing, and its own argument is what it is answerable for.
    expect(errors.get(2)).toContain("Task 3 of job 7");
  });
});

describe("a task that ends by the worker's own exit status", () => {
  it("says what the status means: an impostor on the port, a refusal, no route", async () => {
    const { store, id } = await newRequest(3);
    const ended = (exitCode: number): TaskState => ({
      state: "finished",
      kind: "exit",
      exitCode,
      signal: null,
      reason: `exited with status ${exitCode}`,
    });
    const { scheduler } = scripted([{ 1: ended(4), 2: ended(3), 3: ended(5) }]);
    await waitForRequest({
      store,
      request: id,
      tasks: 3,
      layout: { tasks: 3, chunkSize: 1, retryTasks: [] },
      scheduler,
      job,
      ...timing,
    });
    const errors = (await store.getErrors(id)).map((row) => row.error);
    expect(errors[0]).toContain("could not prove it holds the request's secret");
    expect(errors[0]).toContain("sheepdog recover");
    expect(errors[1]).toContain("the server refused the worker");
    expect(errors[2]).toContain("never reached this machine's server on any of its routes");
    expect(errors[2]).toContain('set connect to "relay"');
  });

  it("asks the scheduler less and less often while nothing changes", async () => {
    const { store, id } = await newRequest(1);
    const running = { 1: { state: "running" } as TaskState };
    const queued = { 1: { state: "queued" } as TaskState };
    // 40 calls with the same answer, then a change, then the same again.
    const script = [...Array.from({ length: 40 }, () => running), queued, queued, queued];
    const times: number[] = [];
    const { scheduler } = scripted(script, () => {
      times.push(Date.now());
    });
    const { controller, waiting } = waitOnOneTask(store, id, scheduler, {
      statusIntervalMs: 10,
      maxStatusIntervalMs: 200,
      countIntervalMs: 2,
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    controller.abort();
    await waiting;
    const gaps = times.slice(1).map((time, i) => time - (times[i] ?? time));
    // Without backing off, 1.5 s at 10 ms would be about 150 calls; growing by half each time
    // to 200 ms, it is 6 calls to reach 100 ms, then about 7 more by 1.5 s.
    expect(times.length).toBeLessThan(25);
    expect(Math.max(...gaps)).toBeGreaterThanOrEqual(150);
    expect(Math.max(...gaps)).toBeLessThan(400);
  });

  it("goes back to asking often when the answer changes", async () => {
    const { store, id } = await newRequest(1);
    const answers = [
      ...Array.from({ length: 8 }, () => ({ 1: { state: "queued" } as TaskState })),
      ...Array.from({ length: 100 }, () => ({ 1: { state: "running" } as TaskState })),
    ];
    const times: number[] = [];
    const { scheduler } = scripted(answers, () => {
      times.push(Date.now());
    });
    const { controller, waiting } = waitOnOneTask(store, id, scheduler, {
      statusIntervalMs: 10,
      maxStatusIntervalMs: 400,
      countIntervalMs: 2,
    });
    while (times.length < 10) await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort();
    await waiting;
    const gaps = times.slice(1).map((time, i) => time - (times[i] ?? time));
    // The 8th answer is the 7th alike: its gap has grown; the 9th changed, so the 10th comes
    // after the base interval again.
    expect(gaps[7]).toBeGreaterThan(100);
    expect(gaps[8]).toBeLessThan(gaps[7] ?? 0);
  });

  it("first asks about a job just submitted one interval later, and about any other at once", async () => {
    const firstQuestionAfter = async (jobJustSubmitted: boolean) => {
      const { store, id } = await newRequest(1);
      const started = Date.now();
      let askedAt: number | undefined;
      const { scheduler } = scripted([{ 1: { state: "queued" } }], () => {
        askedAt ??= Date.now();
      });
      const { controller, waiting } = waitOnOneTask(store, id, scheduler, {
        statusIntervalMs: 300,
        countIntervalMs: 2,
        jobJustSubmitted,
      });
      while (askedAt === undefined) await new Promise((resolve) => setTimeout(resolve, 2));
      controller.abort();
      await waiting;
      return askedAt - started;
    };
    expect(await firstQuestionAfter(false)).toBeLessThan(150);
    expect(await firstQuestionAfter(true)).toBeGreaterThanOrEqual(290);
  });
});
