import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JobRef, JobSpec } from "@sheepdog/contracts";
import { describe, expect, it } from "vitest";
import { fixture, ScriptedRemote } from "./__fixtures__/scripted-remote.js";
import { gridEngine } from "./grid-engine.js";

const spec: JobSpec = {
  name: "demo_1",
  tasks: 5,
  shell: "/usr/bin/python3",
  options: ["-l h_rt=0:1:0"],
  directory: ".sheepdog/",
  program: "print('hi')\n",
};

const sconf =
  "max_aj_instances             2000\nmax_aj_tasks                 75000\nmax_u_jobs 0\n";

function ref(parts: JobRef["parts"], name: string, tasks: number): JobRef {
  return {
    scheduler: "gridengine",
    id: parts.map((part) => part.jobId).join(","),
    tasks,
    parts,
    directory: ".sheepdog",
    name,
  };
}

const emptyQstat =
  "<?xml version='1.0'?>\n<job_info>\n  <queue_info>\n  </queue_info>\n  <job_info>\n  </job_info>\n</job_info>\n";

describe("gridEngine submit", () => {
  it("makes the directory, uploads the script 0600 and parses qsub's job number", async () => {
    const remote = new ScriptedRemote()
      .on(/^qconf -sconf$/, { stdout: sconf })
      .on(/qsub -terse/, { stdout: "31.1-5:1\n" });
    const job = await gridEngine(remote).submit(spec);
    expect(job).toEqual({
      ...ref([{ jobId: "31", firstTask: 1, lastTask: 5 }], "demo_1", 5),
      directory: ".sheepdog/",
    });
    expect(remote.directories).toEqual([".sheepdog"]);
    const upload = remote.uploads.get(".sheepdog/demo_1.py");
    expect(upload?.mode).toBe(0o600);
    expect(upload?.contents).toContain("#$ -t 1-5\n");
    expect(remote.commands).toEqual(["qconf -sconf", "cd -- .sheepdog && qsub -terse demo_1.py"]);
  });

  it("splits an array larger than max_aj_tasks into parts that keep the global task numbers", async () => {
    let next = 40;
    const remote = new ScriptedRemote()
      .on(/^qconf -sconf$/, { stdout: sconf.replace("75000", "2") })
      .on(/qsub -terse/, () => ({
        stdout: `Your job-array ${next++}.x ("demo_1") has been submitted\n`,
      }));
    const scheduler = gridEngine(remote);
    const job = await scheduler.submit(spec);
    expect(job.id).toBe("40,41,42");
    expect(job.parts).toEqual([
      { jobId: "40", firstTask: 1, lastTask: 2 },
      { jobId: "41", firstTask: 3, lastTask: 4 },
      { jobId: "42", firstTask: 5, lastTask: 5 },
    ]);
    expect([...remote.uploads.keys()]).toEqual([
      ".sheepdog/demo_1.1.py",
      ".sheepdog/demo_1.2.py",
      ".sheepdog/demo_1.3.py",
    ]);
    expect(remote.uploads.get(".sheepdog/demo_1.2.py")?.contents).toContain("#$ -t 3-4\n");
    // max_aj_tasks is read once per scheduler.
    await scheduler.submit({ ...spec, name: "demo_2", tasks: 1 });
    expect(remote.commands.filter((command) => command === "qconf -sconf")).toHaveLength(1);
  });

  it("reads max_aj_tasks ahead with prepare, and submit asks no more", async () => {
    const remote = new ScriptedRemote()
      .on(/^qconf -sconf$/, { stdout: sconf })
      .on(/qsub -terse/, { stdout: "32.1-5:1\n" });
    const scheduler = gridEngine(remote);
    await scheduler.prepare?.();
    expect(remote.commands).toEqual(["qconf -sconf"]);
    await scheduler.submit(spec);
    expect(remote.commands).toEqual(["qconf -sconf", "cd -- .sheepdog && qsub -terse demo_1.py"]);
  });

  it("submits a one-task job without reading max_aj_tasks, and prepares nothing for one", async () => {
    const remote = new ScriptedRemote()
      .on(/^qconf -sconf$/, { stdout: sconf })
      .on(/qsub -terse/, { stdout: "33.1-1:1\n" });
    const scheduler = gridEngine(remote);
    await scheduler.prepare?.({ mostTasks: 1 });
    const job = await scheduler.submit({ ...spec, tasks: 1 });
    expect(job.parts).toEqual([{ jobId: "33", firstTask: 1, lastTask: 1 }]);
    expect(remote.commands).toEqual(["cd -- .sheepdog && qsub -terse demo_1.py"]);
    // A job that may have more tasks is prepared for.
    await scheduler.prepare?.({ mostTasks: 2 });
    expect(remote.commands.at(-1)).toBe("qconf -sconf");
  });

  it("honours a maxArrayTasks override without asking qconf", async () => {
    const remote = new ScriptedRemote().on(/qsub -terse/, { stdout: "7.1-2:1\n" });
    const job = await gridEngine(remote, { maxArrayTasks: 2 }).submit({ ...spec, tasks: 4 });
    expect(job.parts.map((part) => [part.firstTask, part.lastTask])).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(remote.commands.some((command) => command.startsWith("qconf"))).toBe(false);
  });

  it("rejects with SUBMIT_FAILED and SGE's message, withdrawing parts already queued", async () => {
    let calls = 0;
    const remote = new ScriptedRemote()
      .on(/qsub -terse/, () =>
        calls++ === 0
          ? { stdout: "50.1-2:1\n" }
          : {
              code: 1,
              stderr:
                'Unable to run job: Job was rejected because job requests unknown queue "nosuchq"\nExiting.\n',
            },
      )
      .on(/^qdel /, { stdout: "sheepdog has deleted job 50\n" });
    const failure = gridEngine(remote, { maxArrayTasks: 2 }).submit(spec);
    await expect(failure).rejects.toMatchObject({
      code: "SUBMIT_FAILED",
      message:
        '[sheepdog] [gridengine] qsub refused job "demo_1" (exit code 1): Unable to run job: Job was rejected because job requests unknown queue "nosuchq" Exiting.',
    });
    expect(remote.commands.at(-1)).toBe("qdel 50");
  });

  it("says how to fix a head node where qsub is not on the PATH", async () => {
    const remote = new ScriptedRemote().on(/^qconf/, { stdout: sconf });
    await expect(gridEngine(remote).submit(spec)).rejects.toMatchObject({
      code: "SUBMIT_FAILED",
      message: expect.stringContaining("qsub was not found on scripted"),
    });
  });

  it("runs the setup commands before every GridEngine command", async () => {
    const remote = new ScriptedRemote().on(/qsub -terse/, { stdout: "8.1-5:1\n" });
    const setup = ". /opt/sge/default/common/settings.sh";
    await gridEngine(remote, { setup, maxArrayTasks: 10 }).submit(spec);
    expect(remote.commands).toEqual([`${setup}\ncd -- .sheepdog && qsub -terse demo_1.py`]);
  });

  it("runs the programs behind Debian's wrapper directly, asking once where they are", async () => {
    const remote = new ScriptedRemote()
      .on(/qsub -terse/, { stdout: "8.1-5:1\n" })
      .on(/qstat -g c/, { stdout: fixture("qstat-g-c.txt") });
    remote.probeAnswer = { stdout: "direct\n/var/lib/gridengine\nmy'cell\nlx-amd64\n" };
    const setup = ". /etc/profile.d/site.sh\n";
    const scheduler = gridEngine(remote, { setup, maxArrayTasks: 10 });
    await Promise.all([scheduler.submit(spec), scheduler.slots()]);
    expect(remote.probes).toEqual([expect.stringMatching(/^\. \/etc\/profile\.d\/site\.sh\n# /)]);
    const direct = [
      "export SGE_ROOT=/var/lib/gridengine SGE_CELL='my'\\''cell' SGE_ARCH=lx-amd64",
      ...["qstat", "qsub", "qdel", "qacct", "qconf"].map(
        (name) => `${name}() { /usr/lib/gridengine/${name} "$@"; }`,
      ),
    ].join("\n");
    expect([...remote.commands].sort()).toEqual([
      `${setup}${direct}\ncd -- .sheepdog && qsub -terse demo_1.py`,
      `${setup}${direct}\nqstat -g c`,
    ]);
  });

  it("runs the programs as the login finds them when the probe fails or finds no wrapper", async () => {
    for (const probeAnswer of [
      { code: 1, stderr: "readlink: invalid option" },
      { stdout: "direct\n/var/lib/gridengine\n" },
      { stdout: "" },
    ]) {
      const remote = new ScriptedRemote().on(/qstat -g c/, { stdout: fixture("qstat-g-c.txt") });
      remote.probeAnswer = probeAnswer;
      await gridEngine(remote).slots();
      expect(remote.commands).toEqual(["qstat -g c"]);
    }
  });

  it("rejects a bad spec before touching the remote", async () => {
    const remote = new ScriptedRemote();
    await expect(
      gridEngine(remote).submit({ ...spec, options: ["-l h_rt=1\n#$ -N x"] }),
    ).rejects.toMatchObject({ code: "CONFIG_INVALID" });
    expect(remote.commands).toEqual([]);
  });
});

describe("gridEngine status", () => {
  it("maps qstat's running, pending, held and Eqw entries onto each task", async () => {
    const remote = new ScriptedRemote()
      .on(/^qstat -xml/, { stdout: fixture("qstat-eqw-held-single.xml") })
      .on(/^qstat -j 13$/, { stdout: fixture("qstat-j-eqw.txt") });
    const scheduler = gridEngine(remote);
    const running = await scheduler.status(
      ref([{ jobId: "11", firstTask: 1, lastTask: 10 }], "running", 10),
    );
    expect(running.get(9)).toEqual({ state: "running", host: "vm" });
    expect(running.get(10)).toEqual({ state: "running", host: "vm" });
    // Tasks 1-8 left qstat; no accounting answer (qacct not found): unknown, never finished.
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((task) => running.get(task))).toEqual(
      Array(8).fill({ state: "unknown" }),
    );
    const held = await scheduler.status(
      ref([{ jobId: "12", firstTask: 1, lastTask: 3 }], "held", 3),
    );
    expect([...held.values()]).toEqual(Array(3).fill({ state: "queued" }));
    const eqw = await scheduler.status(
      ref([{ jobId: "13", firstTask: 1, lastTask: 3 }], "badshell", 3),
    );
    expect(eqw.get(2)).toEqual({
      state: "queued",
      error: 'unable to find shell "/no/such/python"',
    });
    const single = await scheduler.status(
      ref([{ jobId: "14", firstTask: 1, lastTask: 1 }], "single", 1),
    );
    expect(single).toEqual(new Map([[1, { state: "running", host: "vm" }]]));
  });

  it("asks qstat once for all parts and qacct once per part with tasks gone from qstat", async () => {
    const remote = new ScriptedRemote()
      .on(/^qstat -xml/, { stdout: fixture("qstat-running-pending-held.xml") })
      .on(/^qacct -j 15 -t 1-7$/, { stdout: fixture("qacct-exits-and-signals.txt") });
    const job = ref(
      [
        { jobId: "15", firstTask: 1, lastTask: 7 },
        { jobId: "11", firstTask: 8, lastTask: 10 },
      ],
      "ends",
      10,
    );
    const states = await gridEngine(remote).status(job);
    expect(remote.commands.slice(0, 2)).toEqual([
      "qstat -xml -u '$user' -s prs",
      "qacct -j 15 -t 1-7",
    ]);
    // Then one command for the stderr of the tasks that ended badly (none here: no reason grows).
    expect(remote.commands.slice(2)).toEqual([expect.stringMatching(/^for f in /)]);
    expect([...states.keys()]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(states.get(2)).toEqual({
      state: "finished",
      kind: "exit",
      exitCode: 3,
      signal: null,
      reason: "exited with status 3",
    });
    expect(states.get(4)).toMatchObject({ state: "finished", exitCode: null, signal: 9 });
    expect(states.get(8)).toEqual({ state: "queued" });
  });

  it("adds the end of each badly ended task's stderr to its reason, with one command", async () => {
    const home = mkdtempSync(join(tmpdir(), "sheepdog-ge-stderr-"));
    try {
      mkdirSync(join(home, ".sheepdog"));
      const file = (task: number) => join(home, ".sheepdog", `ends.e15.${task}`);
      writeFileSync(file(1), "a warning on a task that went well\n");
      writeFileSync(file(2), "Traceback (most recent call last):\n  oops\nValueError: x\n");
      writeFileSync(file(4), "");
      const remote = new ScriptedRemote()
        .on(/^qstat -xml/, { stdout: emptyQstat })
        .on(/^qacct -j 15 -t 1-7$/, { stdout: fixture("qacct-exits-and-signals.txt") })
        .on(/^for f in /, (command) => ({
          stdout: execFileSync("sh", ["-c", command], { cwd: home, encoding: "utf8" }),
        }));
      const job = ref([{ jobId: "15", firstTask: 1, lastTask: 7 }], "ends", 7);
      const scheduler = gridEngine(remote);
      const states = await scheduler.status(job);
      const tails = remote.commands.filter((command) => command.startsWith("for f in "));
      expect(tails).toHaveLength(1);
      // Only the tasks that did not exit 0 are read.
      expect(tails[0]).toContain(
        "for f in .sheepdog/ends.e15.2 .sheepdog/ends.e15.3 .sheepdog/ends.e15.4 .sheepdog/ends.e15.5 .sheepdog/ends.e15.6;",
      );
      expect(states.get(2)).toMatchObject({
        state: "finished",
        exitCode: 3,
        reason:
          "exited with status 3; the end of its stderr:\n    Traceback (most recent call last):\n      oops\n    ValueError: x",
      });
      expect(states.get(1)).toMatchObject({ reason: "exited with status 0" });
      expect(states.get(4)).toMatchObject({
        signal: 9,
        reason: expect.not.stringContaining("stderr"),
      });
      // Ended tasks are kept with their tail; the files are not read again.
      expect(await scheduler.status(job)).toEqual(states);
      expect(remote.commands.filter((command) => command.startsWith("for f in "))).toHaveLength(1);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("asks qacct only about the range of tasks that left qstat", async () => {
    const remote = new ScriptedRemote()
      .on(/^qstat -xml/, { stdout: fixture("qstat-task-list.xml") })
      .on(/^qacct -j 11 -t 1-4$/, { stdout: fixture("qacct-array-qdel-running.txt") });
    const states = await gridEngine(remote).status(
      ref([{ jobId: "11", firstTask: 1, lastTask: 10 }], "running", 10),
    );
    expect(remote.commands.at(-1)).toBe("qacct -j 11 -t 1-4");
    expect([...states.values()].map((state) => state.state)).toEqual([
      ...Array(4).fill("finished"),
      ...Array(4).fill("running"),
      "queued",
      "queued",
    ]);
  });

  it("reports a task gone from qstat as unknown until qacct has its record, then keeps it", async () => {
    let flushed = false;
    const remote = new ScriptedRemote()
      .on(/^qstat -xml/, { stdout: emptyQstat })
      .on(/^qacct -j 16 -t 1-2$/, () =>
        flushed
          ? { stdout: fixture("qacct-h_rt.txt") }
          : { code: 1, stderr: "error: job id 16 not found\n" },
      );
    const scheduler = gridEngine(remote);
    const job = ref([{ jobId: "16", firstTask: 1, lastTask: 2 }], "hrt", 2);
    expect([...(await scheduler.status(job)).values()]).toEqual([
      { state: "unknown" },
      { state: "unknown" },
    ]);
    flushed = true;
    const states = await scheduler.status(job);
    expect(states.get(1)).toMatchObject({
      state: "finished",
      signal: 9,
      reason: expect.stringContaining("h_rt"),
    });
    const asked = remote.commands.filter((command) => command.startsWith("qacct")).length;
    await scheduler.status(job);
    expect(remote.commands.filter((command) => command.startsWith("qacct"))).toHaveLength(asked);
  });

  it("ignores accounting records of another job that had the same number", async () => {
    const remote = new ScriptedRemote()
      .on(/^qstat -xml/, { stdout: emptyQstat })
      .on(/^qacct -j 16 -t 1-2$/, { stdout: fixture("qacct-h_rt.txt") });
    const states = await gridEngine(remote).status(
      ref([{ jobId: "16", firstTask: 1, lastTask: 2 }], "other", 2),
    );
    expect(states.get(1)).toEqual({ state: "unknown" });
  });

  it("stops asking qacct after qacctWaitMs, and for good once qacct is missing", async () => {
    const remote = new ScriptedRemote()
      .on(/^qstat -xml/, { stdout: emptyQstat })
      .on(/^qacct/, { code: 1, stderr: "error: job id 16 not found\n" });
    const job = ref([{ jobId: "16", firstTask: 1, lastTask: 2 }], "hrt", 2);
    const patient = gridEngine(remote, { qacctWaitMs: 0 });
    await patient.status(job);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await patient.status(job);
    expect(remote.commands.filter((command) => command.startsWith("qacct"))).toHaveLength(1);

    const bare = new ScriptedRemote().on(/^qstat -xml/, { stdout: emptyQstat });
    const noAccounting = gridEngine(bare);
    await noAccounting.status(job);
    await noAccounting.status(job);
    expect(bare.commands).toEqual([
      "qstat -xml -u '$user' -s prs",
      "qacct -j 16 -t 1-2",
      "qstat -xml -u '$user' -s prs",
    ]);
  });

  it("fails with SCHEDULER_FAILED when qstat fails, rather than calling every task unknown", async () => {
    const remote = new ScriptedRemote().on(/^qstat/, {
      code: 1,
      stderr:
        "error: commlib error: got select error (Connection refused)\nunable to contact qmaster\n",
    });
    await expect(
      gridEngine(remote).status(ref([{ jobId: "1", firstTask: 1, lastTask: 1 }], "x", 1)),
    ).rejects.toMatchObject({
      code: "SCHEDULER_FAILED",
      message: expect.stringContaining("unable to contact qmaster"),
    });
    const garbled = new ScriptedRemote().on(/^qstat/, { stdout: "Segmentation fault\n" });
    await expect(
      gridEngine(garbled).status(ref([{ jobId: "1", firstTask: 1, lastTask: 1 }], "x", 1)),
    ).rejects.toMatchObject({ code: "SCHEDULER_FAILED" });
  });

  it("refuses a JobRef that is not its own, never putting its text in a command", async () => {
    const remote = new ScriptedRemote();
    const scheduler = gridEngine(remote);
    const hostile = ref([{ jobId: "1; touch /tmp/pwned", firstTask: 1, lastTask: 1 }], "x", 1);
    await expect(scheduler.status(hostile)).rejects.toMatchObject({ code: "INVALID_INPUT" });
    await expect(scheduler.cancel(hostile)).rejects.toMatchObject({ code: "INVALID_INPUT" });
    await expect(scheduler.cancelTasks(hostile, [1])).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
    await expect(
      scheduler.status({ ...hostile, scheduler: "local", parts: [] }),
    ).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
    expect(remote.commands).toEqual([]);
  });
});

describe("gridEngine cancel and close", () => {
  it("qdels every part; jobs that already ended are not an error", async () => {
    const remote = new ScriptedRemote().on(/^qdel/, {
      code: 1,
      stdout: "sheepdog has registered the job-array task 60.1 for deletion\n",
      stderr: 'denied: job "61" does not exist\n',
    });
    const job = ref(
      [
        { jobId: "60", firstTask: 1, lastTask: 2 },
        { jobId: "61", firstTask: 3, lastTask: 4 },
      ],
      "x",
      4,
    );
    await gridEngine(remote).cancel(job);
    expect(remote.commands).toEqual(["qdel 60 61"]);
  });

  const twoParts = ref(
    [
      { jobId: "60", firstTask: 1, lastTask: 4 },
      { jobId: "61", firstTask: 5, lastTask: 7 },
    ],
    "x",
    7,
  );

  it("qdels just the tasks named, in one command, by the whole job's task numbers", async () => {
    const remote = new ScriptedRemote().on(/^qdel/, {
      stdout: [
        "sheepdog has registered the job-array task 60.2 for deletion",
        "sheepdog has registered the job-array task 60.3 for deletion",
        "sheepdog has deleted job-array task 61.5",
        "sheepdog has deleted job-array task 61.7",
        "",
      ].join("\n"),
    });
    await gridEngine(remote).cancelTasks(twoParts, [7, 2, 3, 5, 3]);
    expect(remote.commands).toEqual(["qdel 60.2-3 61.5 61.7"]);
  });

  it("takes qdel's words for tasks that already ended as success", async () => {
    // What the test cluster's qdel says when the same tasks are deleted a second time.
    const remote = new ScriptedRemote().on(/^qdel/, {
      code: 1,
      stdout: [
        'job "60" task id range "2-3:1" comprises no tasks',
        'job "61" task "5" does not exist',
        'denied: job "61" does not exist',
        "",
      ].join("\n"),
    });
    await gridEngine(remote).cancelTasks(twoParts, [2, 3, 5]);
    expect(remote.commands).toEqual(["qdel 60.2-3 61.5"]);
  });

  it("runs no qdel for no tasks, and refuses a number outside the job before running any", async () => {
    const remote = new ScriptedRemote().on(/^qdel/, {});
    const scheduler = gridEngine(remote);
    await scheduler.cancelTasks(twoParts, []);
    for (const bad of [[1, 8], [0], [2.5]]) {
      await expect(scheduler.cancelTasks(twoParts, bad)).rejects.toMatchObject({
        code: "INVALID_INPUT",
      });
    }
    expect(remote.commands).toEqual([]);
  });

  it("fails with SCHEDULER_FAILED on any other qdel refusal", async () => {
    const remote = new ScriptedRemote().on(/^qdel/, {
      code: 1,
      stderr: 'error: unable to send message to qmaster using port 6444 on host "vm"\n',
    });
    await expect(
      gridEngine(remote).cancel(ref([{ jobId: "60", firstTask: 1, lastTask: 1 }], "x", 1)),
    ).rejects.toMatchObject({
      code: "SCHEDULER_FAILED",
      message: expect.stringContaining("unable to send"),
    });
  });

  it("refuses use after close, and supports await using", async () => {
    const remote = new ScriptedRemote();
    const job = ref([{ jobId: "60", firstTask: 1, lastTask: 1 }], "x", 1);
    let kept: ReturnType<typeof gridEngine> | undefined;
    {
      await using scheduler = gridEngine(remote);
      kept = scheduler;
    }
    await expect(kept.status(job)).rejects.toMatchObject({ code: "CLOSED" });
    await expect(kept.submit(spec)).rejects.toMatchObject({ code: "CLOSED" });
    await expect(kept.cancel(job)).rejects.toMatchObject({ code: "CLOSED" });
    await expect(kept.cancelTasks(job, [1])).rejects.toMatchObject({ code: "CLOSED" });
  });

  it("validates its options", () => {
    const remote = new ScriptedRemote();
    expect(() => gridEngine(remote, { maxArrayTasks: 0 })).toThrow(/maxArrayTasks/);
    expect(() => gridEngine(remote, { qacctWaitMs: -1 })).toThrow(/qacctWaitMs/);
  });
});

describe("gridEngine checkOptions", () => {
  it("accepts what submit accepts, without touching the remote", () => {
    const remote = new ScriptedRemote();
    const scheduler = gridEngine(remote);
    expect(() =>
      scheduler.checkOptions(["-l h_rt=0:1:0", "-q all.q", "-v A='a b'", "-l mem_grab=1G"]),
    ).not.toThrow();
    expect(() => scheduler.checkOptions([])).not.toThrow();
    expect(remote.commands).toEqual([]);
  });

  it("refuses what submit refuses, with CONFIG_INVALID naming the option and the fix", async () => {
    const remote = new ScriptedRemote();
    const scheduler = gridEngine(remote);
    const refused: [string, RegExp][] = [
      ["-l h_rt=1\n#$ -N x", /contains a newline.*Give each option as its own single-line string/],
      ["-l h_rt=1\rimport os", /contains a carriage return/],
      ["-t 1-5", /sets -t, which Sheepdog does not allow.*Remove it/],
      ["-v X=a#b", /contains "#"/],
      ["h_rt=1", /is not an option: each one starts with "-"/],
      ["-l mem_grab=much", /mem_grab="much", which is not a size/],
    ];
    for (const [option, message] of refused) {
      expect(() => scheduler.checkOptions(["-q all.q", option]), option).toThrow(
        expect.objectContaining({
          code: "CONFIG_INVALID",
          detail: { option },
          message: expect.stringMatching(message),
        }),
      );
      await expect(scheduler.submit({ ...spec, options: [option] })).rejects.toMatchObject({
        code: "CONFIG_INVALID",
        detail: { option },
      });
    }
    expect(() => scheduler.checkOptions("-l h_rt=1" as unknown as string[])).toThrow(
      /must be an array of strings/,
    );
    expect(remote.commands).toEqual([]);
  });
});
