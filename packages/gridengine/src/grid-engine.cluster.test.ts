import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import type {
  ExecOptions,
  JobRef,
  JobSpec,
  Remote,
  Scheduler,
  TaskState,
} from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import { connect } from "@sheepdog/deploy-ssh";
import { describeCluster, loginSettings } from "@sheepdog/testcluster";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gridEngine } from "./grid-engine.js";
import { PROBE_MARK } from "./internal/commands.js";
import { splitDirective } from "./internal/directives.js";

/** A string to tell this run's names and marker files apart from any other run's. */
const run = `${process.pid}_${randomBytes(3).toString("hex")}`;
const directory = `.sheepdog-gridengine-test/${run}`;

describeCluster(
  "gridEngine on the test cluster (qsub over SSH as an unprivileged user)",
  (cluster) => {
    let remote: Remote;
    let scheduler: Scheduler;
    const submitted: JobRef[] = [];
    let names = 0;

    function spec(program: string, change: Partial<JobSpec> = {}): JobSpec {
      names += 1;
      return {
        name: `gt_${run}_${names}`,
        tasks: 1,
        shell: cluster.python,
        options: [],
        directory,
        program,
        ...change,
      };
    }

    async function submit(job: JobSpec, using: Scheduler = scheduler): Promise<JobRef> {
      const ref = await using.submit(job);
      submitted.push(ref);
      return ref;
    }

    /** Polls status() until every task satisfies `done`; returns the last answer. */
    async function waitFor(
      job: JobRef,
      done: (state: TaskState) => boolean,
      timeoutMs = 60_000,
    ): Promise<Map<number, TaskState>> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const states = await scheduler.status(job);
        expect([...states.keys()]).toEqual(Array.from({ length: job.tasks }, (_, i) => i + 1));
        if ([...states.values()].every(done)) return states;
        if (Date.now() > deadline) {
          throw new Error(
            `job ${job.id} did not get there in time: ${JSON.stringify([...states])}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }

    const finished = (state: TaskState) => state.state === "finished";

    async function sh(command: string): Promise<string> {
      const result = await remote.exec(command, { timeoutMs: 30_000 });
      expect(result.code, `${command}: ${result.stderr}`).toBe(0);
      return result.stdout;
    }

    beforeAll(async () => {
      remote = await connect(loginSettings(cluster));
      scheduler = gridEngine(remote);
    });

    afterAll(async () => {
      if (!remote) return;
      // Leave nothing queued or running: qdel only this run's own jobs.
      await Promise.all(submitted.map((job) => scheduler.cancel(job).catch(() => undefined)));
      await remote
        .exec(`rm -rf '${directory}'; rmdir .sheepdog-gridengine-test 2>/dev/null; true`)
        .catch(() => undefined);
      await scheduler.close?.();
      await remote.close();
    });

    it("counts the slots of the cluster's queues", async () => {
      expect(await scheduler.slots?.()).toBe(cluster.slots);
    });

    it("runs the programs behind Debian's wrapper directly, with what the wrapper would set", async () => {
      // The test cluster's GridEngine is Debian's: /usr/bin/qstat is its wrapper script.
      expect((await sh('readlink -f -- "$(command -v qstat)"')).trim()).toMatch(
        /\/gridengine-wrapper$/,
      );
      const run: string[] = [];
      const recording: Remote = Object.create(remote, {
        exec: {
          value: (command: string, options?: ExecOptions) => {
            run.push(command);
            return remote.exec(command, options);
          },
        },
      });
      const direct = gridEngine(recording);
      const [slots, status] = await Promise.all([
        direct.slots(),
        direct.status(submitted[0] ?? (await submit(spec("print('hi')\n")))),
      ]);
      expect(slots).toBe(cluster.slots);
      expect(status.size).toBeGreaterThan(0);
      expect(run.filter((command) => command.includes(PROBE_MARK))).toHaveLength(1);
      const prefix = run
        .find((command) => command.endsWith("qstat -g c"))
        ?.slice(0, -"qstat -g c".length);
      const arch = (await sh("/usr/share/gridengine/util/arch")).trim();
      expect(prefix).toBe(
        `export SGE_ROOT=/var/lib/gridengine SGE_CELL=default SGE_ARCH=${arch}\n${["qstat", "qsub", "qdel", "qacct", "qconf"].map((name) => `${name}() { /usr/lib/gridengine/${name} "$@"; }`).join("\n")}\n`,
      );
      // With the wrapper out of reach the prefix still runs the programs, as the wrapper does.
      const unwrapped = await sh(`${prefix}PATH=/nonexistent; qconf -sconf`);
      expect(unwrapped).toContain("max_aj_tasks");
      expect(unwrapped).toBe(await sh("qconf -sconf"));
    });

    describe.concurrent("runs", () => {
      it("submits an array and follows it to finished, with each task's exit code", async () => {
        const job = await submit(
          spec(
            [
              "import os, sys",
              'task = int(os.environ["SGE_TASK_ID"])',
              'print("task", task, "in", os.getcwd())',
              "sys.exit(task - 1)",
            ].join("\n"),
            { tasks: 3 },
          ),
        );
        expect(job).toMatchObject({
          scheduler: "gridengine",
          tasks: 3,
          directory,
          parts: [{ firstTask: 1, lastTask: 3 }],
        });
        expect(job.id).toMatch(/^\d+$/);
        const states = await waitFor(job, finished);
        expect(
          [...states.values()].map((state) =>
            state.state === "finished" ? [state.exitCode, state.signal, state.reason] : state,
          ),
        ).toEqual([0, 1, 2].map((code) => [code, null, `exited with status ${code}`]));
        // -wd and -o default to the job directory ($HOME expanded by GridEngine).
        const output = await sh(`cat '${directory}/${job.name}.o${job.id}.2'`);
        expect(output.trim()).toBe(`task 2 in ${cluster.home}/${directory}`);
        // The script is readable by its owner only.
        expect((await sh(`stat -c %a '${directory}/${job.name}.py'`)).trim()).toBe("600");
      });

      it("reports a task that SIGKILLs itself as finished by signal 9", async () => {
        const job = await submit(spec("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"));
        const states = await waitFor(job, finished);
        expect(states.get(1)).toMatchObject({
          state: "finished",
          exitCode: null,
          signal: 9,
          failed: { code: 100, text: "assumedly after job" },
          reason: expect.stringContaining("killed by signal 9 (SIGKILL)"),
        });
      });

      it("adds the end of a failed task's stderr to its reason, read in one command", async () => {
        const program = [
          "import os, sys",
          'task = int(os.environ["SGE_TASK_ID"])',
          "if task == 2:",
          "    sys.exit(0)",
          'sys.stderr.write("".join("noise %d\\n" % i for i in range(40)))',
          'sys.stderr.write("[sheepdog] [worker] Gave up trying to fetch task %d after 60 s: the server never answered.\\n" % task)',
          "sys.exit(1)",
        ].join("\n");
        const job = await submit(spec(program, { tasks: 3 }));
        const states = await waitFor(job, finished);
        for (const task of [1, 3]) {
          expect(states.get(task)).toMatchObject({
            state: "finished",
            kind: "exit",
            exitCode: 1,
            reason: [
              "exited with status 1; the end of its stderr:",
              "    noise 36",
              "    noise 37",
              "    noise 38",
              "    noise 39",
              `    [sheepdog] [worker] Gave up trying to fetch task ${task} after 60 s: the server never answered.`,
            ].join("\n"),
          });
        }
        expect(states.get(2)).toMatchObject({ exitCode: 0, reason: "exited with status 0" });
      });

      it("tells why a task whose interpreter is missing ended: the end of its stderr", async () => {
        // A site's wrapper (module load, a venv) that execs a python the node does not have.
        const wrapper = `${cluster.home}/${directory}/python-wrapper`;
        await sh(
          `mkdir -p '${directory}' && printf '#!/bin/sh\\nexec /no/such/python3 "$@"\\n' > '${wrapper}' && chmod 700 '${wrapper}'`,
        );
        const job = await submit(spec("print('never')\n", { shell: wrapper }));
        const states = await waitFor(job, finished);
        expect(states.get(1)).toMatchObject({
          state: "finished",
          kind: "exit",
          exitCode: 127,
          reason: expect.stringMatching(
            /^exited with status 127; the end of its stderr:\n {4}\S*python-wrapper: \d+: exec: \/no\/such\/python3: not found$/,
          ),
        });
      });

      it("reports a task over -l h_rt=0:0:2 as having exceeded its run-time limit", async () => {
        const job = await submit(
          spec("import time\ntime.sleep(60)\n", { options: ["-l h_rt=0:0:2"] }),
        );
        const states = await waitFor(job, finished);
        expect(states.get(1)).toMatchObject({
          state: "finished",
          kind: "time-limit",
          exitCode: null,
          signal: 9,
          failed: { code: 37 },
          reason: "exceeded its run-time limit (h_rt=2) and was killed by signal 9 (SIGKILL)",
        });
      });

      it("cancels a running array with qdel; cancelling it again is harmless", async () => {
        const job = await submit(spec("import time\ntime.sleep(120)\n", { tasks: 2 }));
        await waitFor(job, (state) => state.state === "running");
        const running = await scheduler.status(job);
        expect(running.get(1)).toEqual({ state: "running", host: cluster.hostname });
        await scheduler.cancel(job);
        const states = await waitFor(job, finished);
        for (const state of states.values()) {
          expect(state).toMatchObject({ state: "finished", exitCode: null, signal: 9 });
        }
        await expect(scheduler.cancel(job)).resolves.toBeUndefined();
      });

      it("reports tasks cancelled before they ran as unknown, never as finished", async () => {
        const job = await submit(spec("print('never')\n", { tasks: 2, options: ["-h"] }));
        expect([...(await scheduler.status(job)).values()]).toEqual([
          { state: "queued" },
          { state: "queued" },
        ]);
        await scheduler.cancel(job);
        expect([...(await waitFor(job, (state) => state.state !== "queued")).values()]).toEqual([
          { state: "unknown" },
          { state: "unknown" },
        ]);
      });

      it("reports a task GridEngine cannot start (Eqw) as queued with SGE's reason", async () => {
        const job = await submit(spec("print('no')\n", { shell: "/no/such/python3" }));
        const states = await waitFor(job, (state) => state.state === "queued" && !!state.error);
        expect(states.get(1)).toEqual({
          state: "queued",
          error: 'unable to find shell "/no/such/python3"',
        });
        await scheduler.cancel(job);
        expect((await waitFor(job, finished)).get(1)).toEqual({
          state: "finished",
          kind: "never-started",
          exitCode: null,
          signal: null,
          failed: { code: 27, text: "searching requested shell" },
          reason: "never ran: GridEngine failed 27 (searching requested shell)",
        });
      });

      it("rejects a job qsub refuses with SUBMIT_FAILED and SGE's own message", async () => {
        await expect(
          scheduler.submit(spec("print(1)\n", { options: ["-l nosuchres=1"] })),
        ).rejects.toMatchObject({
          code: "SUBMIT_FAILED",
          message: expect.stringContaining('Unable to run job: unknown resource "nosuchres"'),
        });
        await expect(
          scheduler.submit(spec("print(1)\n", { options: ["-q nosuchq"] })),
        ).rejects.toMatchObject({
          code: "SUBMIT_FAILED",
          message: expect.stringContaining('job requests unknown queue "nosuchq"'),
        });
      });

      it("splits an array over maxArrayTasks into parts that keep global task numbers", async () => {
        const small = gridEngine(remote, { maxArrayTasks: 2 });
        const job = await submit(
          spec('import os\nprint("global task", os.environ["SGE_TASK_ID"])\n', { tasks: 5 }),
          small,
        );
        expect(job.parts.map((part) => [part.firstTask, part.lastTask])).toEqual([
          [1, 2],
          [3, 4],
          [5, 5],
        ]);
        expect(new Set(job.parts.map((part) => part.jobId)).size).toBe(3);
        expect(job.id).toBe(job.parts.map((part) => part.jobId).join(","));
        const states = await waitFor(job, finished);
        expect(
          [...states.values()].map((state) => state.state === "finished" && state.exitCode),
        ).toEqual([0, 0, 0, 0, 0]);
        for (const part of job.parts) {
          for (let task = part.firstTask; task <= part.lastTask; task++) {
            const output = await sh(`cat '${directory}/${job.name}.o${part.jobId}.${task}'`);
            expect(output.trim()).toBe(`global task ${task}`);
          }
        }
        await small.close?.();
      });

      it("runs values meant to inject commands as inert text, in qsub and in the job", async () => {
        const marker = `/tmp/sheepdog-pwned-${run}`;
        const options = [
          `-v "SD_A=$(touch ${marker}-a)"`,
          `-v "SD_B=\`touch ${marker}-b\`"`,
          `-v 'SD_C=x;touch ${marker}-c'`,
          `-v "SD_D=a b && touch ${marker}-d"`,
          `-v SD_E='"; touch ${marker}-e; echo "'`,
          `-v SD_F=$(touch\${IFS}${marker}-f)`,
          "-l h_rt=0:1:0",
        ];
        const job = await submit(
          spec(
            'import json, os\nprint(json.dumps({k: v for k, v in os.environ.items() if k.startswith("SD_")}))\n',
            { options },
          ),
        );
        const states = await waitFor(job, finished);
        expect(states.get(1)).toMatchObject({ exitCode: 0 });
        const output = await sh(`cat '${directory}/${job.name}.o${job.id}.1'`);
        // Each value arrives as qsub's own reading of the line (splitDirective), never run.
        const expected = Object.fromEntries(
          options
            .map((option) => splitDirective(option))
            .filter((words) => words[0] === "-v")
            .map((words) => {
              const assignment = words[1] ?? "";
              const eq = assignment.indexOf("=");
              return [assignment.slice(0, eq), assignment.slice(eq + 1)];
            }),
        );
        expect(JSON.parse(output)).toEqual(expected);
        expect(expected.SD_A).toBe(`$(touch ${marker}-a)`);
        // The head node and execution host are this machine: nothing was touched on either.
        expect(await sh(`ls ${marker}-* 2>/dev/null || true`)).toBe("");
        for (const suffix of ["a", "b", "c", "d", "e", "f"]) {
          expect(existsSync(`${marker}-${suffix}`)).toBe(false);
        }
      });

      it("lets qsub refuse a value split by an unquoted blank, running nothing", async () => {
        const marker = `/tmp/sheepdog-pwned-${run}-unquoted`;
        await expect(
          scheduler.submit(spec("print(1)\n", { options: [`-v SD=\`touch ${marker}\``] })),
        ).rejects.toMatchObject({
          code: "SUBMIT_FAILED",
          message: expect.stringContaining("qsub: Unknown option"),
        });
        expect(existsSync(marker)).toBe(false);
      });

      it("refuses values that could add a directive or a line, submitting nothing", async () => {
        const marker = `/tmp/sheepdog-pwned-${run}-refused`;
        const attempts: Partial<JobSpec>[] = [
          { options: [`-l h_rt=0:1:0\n#$ -v X=1\nimport os; os.system("touch ${marker}")`] },
          { options: [`-l h_rt=0:1:0\rimport os; os.system("touch ${marker}")`] },
          { options: ["-l h_rt=0:1:0\u0000"] },
          { options: ["-l h_rt=0:1:0 -N other"] },
          { options: ["-v SD=x#$ -N other"] },
          { options: [`-v SD='x' -v SE=y`] },
          { shell: `/usr/bin/python3 -c "import os; os.system('touch ${marker}')"` },
          { directory: `x$(touch ${marker})` },
          { program: `#$ -v X=1\nimport os\nos.system("touch ${marker}")\n` },
        ];
        for (const attempt of attempts) {
          const job = spec("print(1)\n", attempt);
          const error = await scheduler.submit(job).catch((e: unknown) => e);
          expect(SheepdogError.isInstance(error), String(error)).toBe(true);
          expect((error as SheepdogError).code).toMatch(/^(CONFIG_INVALID|INVALID_INPUT)$/);
          const listed = await remote.exec(`qstat -j ${job.name}`);
          expect(listed.code, `a job ${job.name} was submitted`).not.toBe(0);
        }
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        expect(existsSync(marker)).toBe(false);
      });
    });
  },
);
