import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JobRef, Remote, Scheduler } from "@sheepdog/contracts";
import { connect } from "@sheepdog/deploy-ssh";
import { gridEngine } from "@sheepdog/gridengine";
import { slurm } from "@sheepdog/slurm";
import type { TestCluster, TestScheduler } from "@sheepdog/testcluster";
import {
  describeCluster,
  loginSettings,
  pythonAllBegun,
  schedulerSettings,
  testSchedulers,
  unusedPort,
  viewSettings,
} from "@sheepdog/testcluster";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MapOptions, MapProgress, SheepdogConfig } from "./index.js";
import {
  createSheepdog,
  getErrors,
  getResults,
  listRequests,
  map,
  mapAsync,
  py,
  recover,
  requestStatus,
  SheepdogError,
  shutdown,
} from "./index.js";

/** What differs between the schedulers, for a suite that runs over each. */
interface Dialect {
  /** A run-time limit each call gets and that a sleeping call passes (Slurm's least is a minute). */
  shortTime: string;
  /** How long a test over `shortTime` may take. */
  timeLimitTestMs: number;
  /** The command its owner cancels one task of a running job with. */
  cancelTask(job: JobRef, task: number): string;
  /** The kind a task cancelled by hand is given (GridEngine's accounting cannot tell). */
  cancelledKind: string;
  /** A shell command that prints when task `task` of `job` ended, in seconds since the epoch. */
  endedAt(job: JobRef, task: number): string;
  /** The command that says whether any task of `job` is still queued or running. */
  listed(job: JobRef): string;
  /** The scheduler, over a remote, with at most `maxArrayTasks` tasks per array job. */
  open(remote: Remote, maxArrayTasks: number): Scheduler;
}

function part(job: JobRef, task: number) {
  const found = job.parts.find((p) => p.firstTask <= task && task <= p.lastTask);
  if (!found) throw new Error(`task ${task} is in no part of ${job.id}`);
  return found;
}

const dialects: Record<TestScheduler, Dialect> = {
  gridengine: {
    shortTime: "3s",
    timeLimitTestMs: 60_000,
    cancelTask: (job, task) => `qdel ${part(job, task).jobId} -t ${task}`,
    cancelledKind: "signal",
    endedAt: (job, task) =>
      `date -d "$(qacct -j ${part(job, task).jobId} -t ${task} | sed -n 's/^end_time *//p' | tail -1)" +%s`,
    listed: (job) => `qstat -j ${job.parts.map((p) => p.jobId).join(",")} >/dev/null 2>&1`,
    open: (remote, maxArrayTasks) => gridEngine(remote, { maxArrayTasks }),
  },
  slurm: {
    shortTime: "1:00",
    timeLimitTestMs: 180_000,
    cancelTask: (job, task) => {
      const { jobId, firstTask } = part(job, task);
      return `scancel ${jobId}_${task - firstTask + 1}`;
    },
    cancelledKind: "cancelled",
    endedAt: (job, task) => {
      const { jobId, firstTask } = part(job, task);
      return `date -d "$(sacct -n -P -X -j ${jobId}_${task - firstTask + 1} --format=End | tail -1)" +%s`;
    },
    listed: (job) =>
      `test -n "$(squeue -h -r -j ${job.parts.map((p) => p.jobId).join(",")} 2>/dev/null)"`,
    open: (remote, maxArrayTasks) => slurm(remote, { maxArrayTasks }),
  },
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `command` on the head node as the test user, over a connection of its own. */
async function onHead(cluster: TestCluster, command: string) {
  const remote = await connect(loginSettings(cluster));
  try {
    return await remote.exec(command, { timeoutMs: 30_000 });
  } finally {
    await remote.close();
  }
}

for (const scheduler of testSchedulers) {
  const dialect = dialects[scheduler];

  describeCluster(
    `dead tasks, retries and recovery on the test cluster's ${scheduler}`,
    (cluster) => {
      let dir: string;
      let config: SheepdogConfig;
      let dbfile: string;

      beforeAll(() => {
        dir = mkdtempSync(join(tmpdir(), `sheepdog-core-${scheduler}-`));
        dbfile = join(dir, "sheepdog.sqlite");
        config = { ...schedulerSettings(cluster, scheduler), dbfile };
      });
      afterAll(async () => {
        await shutdown();
        rmSync(dir, { recursive: true, force: true });
      });

      /** Maps, and resolves with the results, the errors, the job and when the map ended. */
      async function mapRun(
        f: ReturnType<typeof py>,
        args: unknown[][],
        extra: Partial<SheepdogConfig> = {},
        options: MapOptions = {},
      ) {
        const progress: MapProgress[] = [];
        const results = await map(
          f,
          args,
          { ...config, ...extra },
          {
            ...options,
            onProgress: (p) => {
              progress.push(p);
              options.onProgress?.(p);
            },
          },
        );
        const done = Date.now();
        const request = progress.at(-1)?.request ?? 0;
        const errors = await getErrors(request, { dbfile });
        const { job } = await requestStatus(request, { dbfile });
        if (!job) throw new Error(`request ${request} has no job`);
        return { results, errors, job, request, done, progress };
      }

      /** Expects the map to have recorded task `task`'s death within 16 s of its end. */
      async function expectPromptly(what: string, job: JobRef, task: number, done: number) {
        const { stdout } = await onHead(cluster, dialect.endedAt(job, task));
        expect(stdout.trim(), `${scheduler} knows when task ${task} ended`).toMatch(/^\d+$/);
        const late = done - Number(stdout.trim()) * 1000;
        process.stdout.write(
          `[${scheduler}] ${what}: error ${(late / 1000).toFixed(1)} s after the task's end\n`,
        );
        expect(late).toBeLessThanOrEqual(16_000);
      }

      describe.concurrent("a task that dies without reporting becomes an error of its kind, within 15 s of its end", () => {
        it("killed by SIGKILL", async () => {
          const f = py`
def f(x):
    import os, signal
    if x == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return x
`;
          const run = await mapRun(f, [[0], [1]], { chunkSize: 1 });
          expect(run.results).toEqual([0, null]);
          const [args, error] = run.errors[0] ?? [];
          expect(args).toEqual([1]);
          // Task 1, done with its own argument, claims task 2's when task 2 has yet to start:
          // the task that ran it is the one that died.
          const [info] = (await listRequests({ dbfile })).filter((r) => r.id === run.request);
          const ran = (info?.meta.claims as Record<string, number> | undefined)?.["2"] ?? 2;
          expect(error).toContain(
            `Task ${ran} of job ${run.job.id} ended without reporting a result for these arguments [signal]`,
          );
          expect(error).toContain("killed by signal 9 (SIGKILL)");
          await expectPromptly("SIGKILL", run.job, ran, run.done);
        });

        it(
          "over its run-time limit (resources.time)",
          async () => {
            const f = py`
def f(x):
    import time
    time.sleep(300)
`;
            const run = await mapRun(f, [[1]], { resources: { time: dialect.shortTime } });
            expect(run.results).toEqual([null]);
            const error = run.errors[0]?.[1] ?? "";
            expect(error).toContain("[time-limit]");
            expect(error).toMatch(scheduler === "slurm" ? /TIMEOUT/ : /h_rt=/);
            await expectPromptly("time limit", run.job, 1, run.done);
          },
          dialect.timeLimitTestMs,
        );

        it("cancelled by hand while it runs", async () => {
          const f = py`
def f(x):
    import time
    if x == 1:
        time.sleep(300)
    return x
`;
          // A time limit keeps task 1 from claiming task 2's argument (done with its own at
          // once, it would run the long call itself), so the call to cancel is task 2's.
          const request = await mapAsync(f, [[0], [1]], {
            ...config,
            chunkSize: 1,
            resources: { time: "0:10:00" },
          });
          let job: JobRef | undefined;
          for (let i = 0; i < 120 && !job; i++) {
            const status = await requestStatus(request, { ...loginSettings(cluster), dbfile });
            if (status.taskStates?.get(2)?.state === "running") job = status.job;
            else await sleep(500);
          }
          if (!job) throw new Error("task 2 never ran");
          const cancelled = await onHead(cluster, dialect.cancelTask(job, 2));
          expect(cancelled.code, cancelled.stderr).toBe(0);
          const rows = await getResults(request, {
            ...loginSettings(cluster),
            dbfile,
            block: true,
          });
          expect(rows.map(([, result]) => result)).toEqual([0, null]);
          const error = (await getErrors(request, { dbfile }))[0]?.[1] ?? "";
          expect(error).toContain(`[${dialect.cancelledKind}]`);
          // sacct names who cancelled it; scontrol, which answers first when sacct lags, does not.
          if (scheduler === "slurm")
            expect(error).toMatch(/was cancelled (by uid \d+ )?\(scancel\)/);
        }, 90_000);

        it("a missing interpreter: never started, saying which", async () => {
          const f = py`
def f(x):
    return x
`;
          const run = await mapRun(f, [[1]], { shell: "/usr/bin/python2.7" });
          expect(run.results).toEqual([null]);
          const error = run.errors[0]?.[1] ?? "";
          expect(error).toContain("[never-started]");
          expect(error).toContain("/usr/bin/python2.7");
        }, 60_000);

        it("over its memory limit (resources.memory): the worker reports the MemoryError at once", async () => {
          const f = py`
def f(mib):
    return len(bytearray(mib * 1024 * 1024))
`;
          const run = await mapRun(f, [[2], [800]], {
            chunkSize: 1,
            resources: { memory: "200M" },
          });
          expect(run.results).toEqual([2 * 1024 * 1024, null]);
          expect(run.errors[0]?.[1]).toMatch(/Traceback[\s\S]*MemoryError/);
        });

        if (scheduler === "slurm") {
          it("its node fails under it (its slurmstepd killed, the node registered again): node-failure", async () => {
            const f = py`
def f(x):
    import time
    time.sleep(300)
`;
            const request = await mapAsync(f, [[1]], config);
            let job: JobRef | undefined;
            for (let i = 0; i < 120 && !job; i++) {
              const status = await requestStatus(request, { ...loginSettings(cluster), dbfile });
              if (status.taskStates?.get(1)?.state === "running") job = status.job;
              else await sleep(500);
            }
            if (!job) throw new Error("the task never ran");
            // slurmctld counts a job missing from its node only once it has run for longer than
            // BatchStartTimeout (10 s).
            await sleep(12_000);
            await failNodeUnder(`${part(job, 1).jobId}_1`);
            const rows = await getResults(request, {
              ...loginSettings(cluster),
              dbfile,
              block: true,
            });
            const done = Date.now();
            expect(rows.map(([, result]) => result)).toEqual([null]);
            const error = (await getErrors(request, { dbfile }))[0]?.[1] ?? "";
            expect(error).toContain("[node-failure]");
            expect(error).toContain("NODE_FAIL");
            await expectPromptly("node failure", job, 1, done);
          }, 90_000);
        }
      });

      it("retries an out-of-memory death with more memory, told why by retryWith", async () => {
        const hog = py`
def f(children, mib):
    import subprocess, sys
    code = "import time; b = bytearray(%d * 1024 * 1024); time.sleep(8)" % mib
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(children)]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise RuntimeError("a child failed: %r" % codes)
    return children * mib
`;
        const told: unknown[] = [];
        const run = await mapRun(
          hog,
          [
            [3, 150],
            [1, 5],
          ],
          { chunkSize: 1, retries: 1, resources: { memory: "300M" } },
          {
            retryWith: (attempt, previous, failures) => {
              told.push({ attempt, resources: previous.resources, kinds: failures.kinds });
              return { resources: { ...previous.resources, memory: "900M" } };
            },
          },
        );
        expect(run.results).toEqual([450, 5]);
        expect(told).toEqual([
          { attempt: 2, resources: { memory: "300M" }, kinds: { "out-of-memory": 1 } },
        ]);
        expect(run.job.name).toMatch(/_r2$/);
      }, 120_000);

      it("chunks arguments into tasks, and splits an array over the site's limit, results in order", async () => {
        const remote = await connect(loginSettings(cluster));
        const sheepdog = createSheepdog({
          cluster: { scheduler: dialect.open(remote, 3), remote },
          dbfile: join(dir, "split.sqlite"),
          chunkSize: 2,
        });
        try {
          const f = py`
def f(x):
    return x * x
`;
          const args = Array.from({ length: 13 }, (_, x) => [x]);
          const settled = await sheepdog.mapSettled(f, args);
          expect(settled.results.map((r) => (r.ok ? r.value : r.error))).toEqual(
            args.map(([x]) => (x as number) ** 2),
          );
          const { job } = await sheepdog.status(settled.request);
          // 13 arguments, 2 a task: 7 tasks, in parts of at most 3.
          expect(job?.tasks).toBe(7);
          expect(job?.parts.map((p) => [p.firstTask, p.lastTask])).toEqual([
            [1, 3],
            [4, 6],
            [7, 7],
          ]);
          // recover reads every part's output files: a report of each of the 13 calls.
          expect(await sheepdog.recover(settled.request)).toEqual({
            found: 13,
            stored: 0,
            missing: 0,
          });
        } finally {
          await sheepdog.close();
          await remote.close();
        }
      }, 120_000);

      it("recovers results the server never received, from the tasks' output files", async () => {
        // Each call marks that it has begun (so its task has its work), waits for the others,
        // then computes for a while.
        const begun = `/tmp/sheepdog-recover-begun-${process.pid}-${scheduler}`;
        const f = py`
def f(x):
${pythonAllBegun(begun, 3)}
    time.sleep(3)
    return x + 1
`;
        const recoverDb = join(dir, "recover.sqlite");
        const login = { ...loginSettings(cluster), dbfile: recoverDb };
        const request = await mapAsync(f, [[1], [2], [3]], {
          ...config,
          dbfile: recoverDb,
          port: await unusedPort(),
          retryWindowSeconds: 3,
          chunkSize: 1,
        });
        try {
          // Once every call has its work, the server goes for good: the workers give up after
          // their retry window and keep their reports in their output files.
          for (let i = 0; i < 240; i++) {
            const { stdout } = await onHead(cluster, `ls ${begun} 2>/dev/null | wc -l`);
            if (Number(stdout.trim()) >= 3) break;
            await sleep(500);
          }
          await shutdown();
          let outcome = await recover(request, login);
          for (let i = 0; i < 60 && outcome.missing > 0; i++) {
            await sleep(1000);
            outcome = await recover(request, login);
          }
          expect(outcome.missing).toBe(0);
          expect((await getResults(request, { dbfile: recoverDb })).map(([, r]) => r)).toEqual([
            2, 3, 4,
          ]);
        } finally {
          await onHead(cluster, `rm -rf ${begun}`);
        }
      }, 180_000);

      it("an AbortSignal cancels the job: nothing of it is left queued or running", async () => {
        const f = py`
def f(x):
    import time
    time.sleep(300)
`;
        const controller = new AbortController();
        let request = 0;
        const running = map(
          f,
          [[1], [2]],
          { ...config, chunkSize: 1 },
          {
            signal: controller.signal,
            onProgress: (p) => {
              request = p.request;
              if (p.running > 0) controller.abort();
            },
          },
        );
        const error = await running.catch((e: unknown) => e);
        expect(SheepdogError.isInstance(error) && error.code).toBe("ABORTED");
        const { job } = await requestStatus(request, { dbfile });
        if (!job) throw new Error("no job");
        let listed = true;
        for (let i = 0; i < 20 && listed; i++) {
          listed = (await onHead(cluster, dialect.listed(job))).code === 0;
          if (listed) await sleep(500);
        }
        expect(listed).toBe(false);
      }, 90_000);
    },
  );
}

/**
 * Makes the node fail under a running Slurm array task as a lost node does: kills its
 * slurmstepd and what it runs, then has slurmd register again (`scontrol reconfigure`), which
 * no longer lists the job, so slurmctld ends it NODE_FAIL. Other jobs' steps run on.
 */
async function failNodeUnder(arrayTask: string): Promise<void> {
  const { execFileSync } = await import("node:child_process");
  const run = (command: string) => execFileSync("sh", ["-c", command], { encoding: "utf8" }).trim();
  // An array task runs as a job of its own id (squeue's %A), which its slurmstepd is named by.
  const jobId = run(`squeue -h -j ${arrayTask} -o %A`);
  if (!/^\d+$/.test(jobId)) throw new Error(`no running job for ${arrayTask}: ${jobId}`);
  const stepd = run(`pgrep -f '^slurmstepd: \\[${jobId}\\.batch\\]' || true`);
  if (!/^\d+$/.test(stepd)) throw new Error(`no slurmstepd for job ${jobId}: ${stepd}`);
  // Stopped first, so that it cannot see its task die and report an ordinary failure (FAILED,
  // signal 9) before it dies itself: only the node's loss of the job is left to account.
  run(`kill -STOP ${stepd}; pkill -9 -P ${stepd}; kill -9 ${stepd}`);
  run(`while kill -0 ${stepd} 2>/dev/null; do sleep 0.2; done`);
  for (let i = 0; i < 6; i++) {
    run("scontrol reconfigure");
    await new Promise((resolve) => setTimeout(resolve, 3000));
    if (run(`squeue -h -j ${jobId} -o %T 2>/dev/null || true`) !== "RUNNING") return;
  }
  throw new Error(`slurmctld did not end job ${jobId} after its slurmstepd was killed`);
}

describeCluster("scheduler: auto asks the head node which scheduler it has", (cluster) => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "sheepdog-core-auto-"));
  });
  afterAll(async () => {
    await shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  const f = py`
def f(x):
    return -x
`;

  for (const scheduler of testSchedulers) {
    it(`a head node with only ${scheduler}: the map runs there with no other new option`, async () => {
      const dbfile = join(dir, `${scheduler}.sqlite`);
      const progress: MapProgress[] = [];
      const results = await map(
        f,
        [[1], [2], [3]],
        { ...viewSettings(cluster, scheduler), dbfile },
        {
          onProgress: (p) => progress.push(p),
        },
      );
      expect(results).toEqual([-1, -2, -3]);
      const { job } = await requestStatus(progress.at(-1)?.request ?? 0, { dbfile });
      expect(job?.scheduler).toBe(scheduler);
    }, 60_000);
  }

  it("a head node with neither, or both, is an error that says what to set", async () => {
    const dbfile = join(dir, "refused.sqlite");
    const neither = await map(f, [[1]], { ...viewSettings(cluster, "neither"), dbfile }).catch(
      (e: unknown) => e,
    );
    expect(SheepdogError.isInstance(neither) && neither.code).toBe("CONFIG_INVALID");
    expect((neither as Error).message).toContain(
      "has neither sbatch (Slurm) nor qsub (GridEngine)",
    );
    const both = await map(f, [[1]], { ...loginSettings(cluster), dbfile }).catch(
      (e: unknown) => e,
    );
    expect((both as Error).message).toContain(
      'has both Slurm (sbatch) and GridEngine (qsub). Choose one with scheduler: "slurm"',
    );
  }, 60_000);
});
