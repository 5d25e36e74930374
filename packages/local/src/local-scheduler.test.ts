import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JobRef, JobSpec, Scheduler, TaskState } from "@sheepdog/contracts";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { LocalScheduler } from "./local-scheduler.js";
import { localScheduler } from "./local-scheduler.js";

const python = "/usr/bin/python3";

async function waitFor(
  scheduler: Scheduler,
  job: JobRef,
  ready: (states: Map<number, TaskState>) => boolean,
): Promise<Map<number, TaskState>> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const states = await scheduler.status(job);
    if (ready(states)) return states;
    if (Date.now() > deadline) throw new Error(`job ${job.id} did not get there in time`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function settle(scheduler: Scheduler, job: JobRef): Promise<Map<number, TaskState>> {
  return waitFor(scheduler, job, (states) =>
    [...states.values()].every((s) => s.state === "finished"),
  );
}

describe("localScheduler", () => {
  let home: string;
  let scheduler: LocalScheduler;
  const spec = (program: string, tasks: number, name = "job"): JobSpec => ({
    name,
    tasks,
    program,
    shell: python,
    options: [],
    directory: ".sheepdog",
  });

  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), "sheepdog-local-"));
    scheduler = localScheduler({ concurrency: 2, home });
  });
  afterEach(async () => {
    await scheduler.close?.();
    rmSync(home, { recursive: true, force: true });
  });

  it("runs every task with its number and keeps its output like GridEngine's .o files", async () => {
    const job = await scheduler.submit(
      spec('import os\nprint("task", os.environ["SHEEPDOG_TASK_ID"])', 5),
    );
    expect(job).toMatchObject({ scheduler: "local", tasks: 5, name: "job" });
    const states = await settle(scheduler, job);
    expect([...states.keys()]).toEqual([1, 2, 3, 4, 5]);
    for (const [number, state] of states) {
      expect(state).toMatchObject({ state: "finished", exitCode: 0, signal: null });
      const out = readFileSync(join(home, ".sheepdog", `job.o${job.id}.${number}`), "utf8");
      expect(out).toBe(`task ${number}\n`);
    }
    expect(statSync(join(home, ".sheepdog", "job.py")).mode & 0o777).toBe(0o600);
  });

  it("reports exit codes and signals", async () => {
    const job = await scheduler.submit(
      spec(
        [
          "import os, signal, sys",
          'n = int(os.environ["SHEEPDOG_TASK_ID"])',
          "if n == 1: sys.exit(3)",
          "if n == 2: os.kill(os.getpid(), signal.SIGKILL)",
        ].join("\n"),
        3,
      ),
    );
    const states = await settle(scheduler, job);
    expect(states.get(1)).toMatchObject({
      kind: "exit",
      exitCode: 3,
      signal: null,
      reason: "exited with status 3",
    });
    expect(states.get(2)).toMatchObject({
      kind: "signal",
      exitCode: null,
      signal: 9,
      reason: "killed by signal 9 (SIGKILL)",
    });
    expect(states.get(3)).toMatchObject({ exitCode: 0 });
  });

  it("runs no more tasks at once than its concurrency", async () => {
    const program = [
      "import os, time",
      "open(os.environ['SHEEPDOG_TASK_ID'] + '.start', 'w').write(repr(time.time()))",
      "time.sleep(0.3)",
      "open(os.environ['SHEEPDOG_TASK_ID'] + '.end', 'w').write(repr(time.time()))",
    ].join("\n");
    const job = await scheduler.submit(spec(program, 6));
    await settle(scheduler, job);
    const dir = join(home, ".sheepdog");
    const spans = [1, 2, 3, 4, 5, 6].map((n) => ({
      start: Number(readFileSync(join(dir, `${n}.start`), "utf8")),
      end: Number(readFileSync(join(dir, `${n}.end`), "utf8")),
    }));
    for (const { start } of spans) {
      const overlapping = spans.filter((s) => s.start <= start && start < s.end).length;
      expect(overlapping).toBeLessThanOrEqual(2);
    }
  });

  it("cancels running and queued tasks", async () => {
    const job = await scheduler.submit(spec("import time\ntime.sleep(30)", 4));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await scheduler.cancel(job);
    const states = await settle(scheduler, job);
    const reasons = [...states.values()].map((s) => (s.state === "finished" ? s.reason : ""));
    expect(reasons.filter((r) => r === "cancelled: killed by signal 15 (SIGTERM)")).toHaveLength(2);
    expect(reasons.filter((r) => r === "cancelled before it started")).toHaveLength(2);
    const kinds = [...states.values()].map((s) => (s.state === "finished" ? s.kind : s.state));
    expect(kinds).toEqual(["cancelled", "cancelled", "cancelled", "cancelled"]);
  });

  it("cancels just the tasks named: a queued one before it starts, a running one by signal", async () => {
    const job = await scheduler.submit(spec("import time\ntime.sleep(30)", 3));
    const states = (now: Map<number, TaskState>) => [1, 2, 3].map((task) => now.get(task)?.state);
    await waitFor(scheduler, job, (now) => now.get(2)?.state === "running");
    for (const bad of [[1, 4], [0], [2.5]]) {
      await expect(scheduler.cancelTasks(job, bad)).rejects.toMatchObject({
        code: "INVALID_INPUT",
      });
    }
    expect(states(await scheduler.status(job))).toEqual(["running", "running", "queued"]);
    await scheduler.cancelTasks(job, [2, 3]);
    const after = await waitFor(scheduler, job, (now) => now.get(2)?.state === "finished");
    expect(after.get(3)).toMatchObject({
      kind: "cancelled",
      reason: "cancelled before it started",
    });
    expect(after.get(2)).toMatchObject({
      kind: "cancelled",
      reason: "cancelled: killed by signal 15 (SIGTERM)",
    });
    expect(after.get(1)?.state).toBe("running");
    await scheduler.cancel(job);
    const ended = await settle(scheduler, job);
    expect(ended.get(1)).toMatchObject({ kind: "cancelled" });
  });

  it("reports a shell that cannot start as a finished task, not a crash", async () => {
    const job = await scheduler.submit({ ...spec("print(1)", 1), shell: "/nonexistent/python" });
    const states = await settle(scheduler, job);
    expect(states.get(1)).toMatchObject({
      state: "finished",
      kind: "never-started",
      exitCode: 127,
    });
    expect((states.get(1) as { reason: string }).reason).toContain(
      "could not start /nonexistent/python",
    );
  });

  it("refuses jobs it does not know and bad settings", async () => {
    await expect(
      scheduler.status({
        scheduler: "local",
        id: "x",
        tasks: 1,
        parts: [],
        directory: "",
        name: "",
      }),
    ).rejects.toMatchObject({ code: "SCHEDULER_FAILED" });
    await expect(
      scheduler.cancelTasks(
        { scheduler: "local", id: "x", tasks: 1, parts: [], directory: "", name: "" },
        [1],
      ),
    ).rejects.toMatchObject({ code: "SCHEDULER_FAILED" });
    expect(() => localScheduler({ concurrency: 0 })).toThrow(
      /concurrency must be a positive integer/,
    );
    await scheduler.close?.();
    await expect(scheduler.submit(spec("print(1)", 1))).rejects.toMatchObject({ code: "CLOSED" });
  });

  it("reads back a job's marked output lines, from another scheduler too, and no other job's", async () => {
    const program =
      'import os\nn = os.environ["SHEEPDOG_TASK_ID"]\nprint("MARK", n)\nprint("plain", n)';
    const job = await scheduler.submit(spec(program, 2, "out"));
    const longer = await scheduler.submit(spec(program, 1, "out_r2"));
    await settle(scheduler, job);
    await settle(scheduler, longer);
    const later = localScheduler({ home });
    expect((await later.outputLines(job, "MARK")).sort()).toEqual(["MARK 1", "MARK 2"]);
    expect(await later.outputLines(longer, "MARK")).toEqual(["MARK 1"]);
    expect(await later.outputLines(job, "NOTHING")).toEqual([]);
    expect(await later.outputLines({ ...job, name: "never_ran" }, "MARK")).toEqual([]);
    expect(await later.outputLines({ ...job, directory: join(home, "gone") }, "MARK")).toEqual([]);
    await later.close();
  });

  it("refuses bad outputLines arguments, and reports unreadable files as REMOTE_FAILED", async () => {
    const local = localScheduler({ home });
    const job = await local.submit(spec("print('MARK')", 1, "unreadable"));
    await settle(local, job);
    await expect(local.outputLines(job, "a\nb")).rejects.toMatchObject({ code: "INVALID_INPUT" });
    await expect(local.outputLines({ ...job, name: "../x" }, "MARK")).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
    await expect(
      local.outputLines({ ...job, scheduler: "gridengine" }, "MARK"),
    ).rejects.toMatchObject({ code: "INVALID_INPUT" });
    // A directory where an output file should be: unreadable as a file, even for root.
    mkdirSync(join(home, ".sheepdog", "unreadable.o9.1"));
    await expect(local.outputLines(job, "MARK")).rejects.toMatchObject({
      code: "REMOTE_FAILED",
      message: expect.stringContaining("Cannot read the output files of job unreadable"),
    });
    await local.close();
  });

  it("refuses a job name that is not a plain file name, writing nothing", async () => {
    await expect(scheduler.submit(spec("print(1)", 1, "../escape"))).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
    expect(existsSync(join(home, "escape.py"))).toBe(false);
  });

  it("with keepTasksOnClose, close() leaves running and queued tasks to finish", async () => {
    const keeping = localScheduler({ concurrency: 1, home, keepTasksOnClose: true });
    const job = await keeping.submit(spec("import time\ntime.sleep(0.3)", 2, "kept"));
    await keeping.close();
    await expect(keeping.submit(spec("print(1)", 1))).rejects.toMatchObject({ code: "CLOSED" });
    const states = await settle(keeping, job);
    expect([...states.values()].map((s) => s.state === "finished" && s.exitCode)).toEqual([0, 0]);
  });

  it("by default, close() stops running tasks and drops queued ones", async () => {
    const stopping = localScheduler({ concurrency: 1, home });
    const job = await stopping.submit(spec("import time\ntime.sleep(30)", 2, "stopped"));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await stopping.close();
    const states = await settle(stopping, job);
    expect([...states.values()].map((s) => s.state === "finished" && s.reason)).toEqual([
      "cancelled: killed by signal 15 (SIGTERM)",
      "cancelled before it started",
    ]);
  });
});
