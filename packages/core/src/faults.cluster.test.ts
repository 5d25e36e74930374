import { spawn } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { JobRef, Remote } from "@sheepdog/contracts";
import { connect } from "@sheepdog/deploy-ssh";
import {
  describeCluster,
  loginSettings,
  pythonAllBegun,
  schedulerSettings,
  unusedPort,
} from "@sheepdog/testcluster";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { undecodableAtOne } from "./__fixtures__/functions.js";
import type { MapOptions, MapProgress, SheepdogConfig } from "./index.js";
import {
  cancelRequest,
  getErrors,
  getResults,
  listRequests,
  map,
  py,
  requestStatus,
  serve,
  shutdown,
} from "./index.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The sockets of this process connected to `port` (ESTABLISHED), by inode. */
function connectionsTo(port: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (match?.[1]) inodes.add(match[1]);
    } catch {
      // The fd closed while we looked.
    }
  }
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const found: string[] = [];
  for (const table of ["/proc/self/net/tcp", "/proc/self/net/tcp6"]) {
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [, , remote, state, , , , , , inode] = fields;
      if (remote?.endsWith(hex) && state === "01" && inode && inodes.has(inode)) found.push(inode);
    }
  }
  return found;
}

// What every scheduler shares (tasks killed, over their limits, retried, recovered) is in
// schedulers.cluster.test.ts, run over each; these are GridEngine's own faults and the
// server's.
describeCluster("faults on the GridEngine test cluster", (cluster) => {
  let dir: string;
  let config: SheepdogConfig;
  /**
   * How to log in, without the host: work on an existing request takes its host from the
   * request, and SSH settings only from the caller.
   */
  let login: Omit<SheepdogConfig, "host">;
  let dbfile: string;
  /** Where, on the head node, allBegun's calls mark that they have begun. */
  const begunDirs = `/tmp/sheepdog-faults-begun-${process.pid}`;
  const dist = pathToFileURL(join(import.meta.dirname, "../dist/index.js")).href;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "sheepdog-core-faults-"));
    dbfile = join(dir, "sheepdog.sqlite");
    config = { ...schedulerSettings(cluster, "gridengine"), dbfile };
    const { host: _host, ...rest } = config;
    login = rest;
  });
  afterAll(async () => {
    await onHead(`rm -rf ${begunDirs}-*`);
    await shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `command` on the head node as the test user, over a connection of its own. */
  async function onHead(command: string) {
    const remote: Remote = await connect(loginSettings(cluster));
    try {
      return await remote.exec(command, { timeoutMs: 30_000 });
    } finally {
      await remote.close();
    }
  }

  /** When task `task` of job `jobId` ended, as qacct records it, in ms since the epoch. */
  async function taskEnded(jobId: string, task: number): Promise<number> {
    const { stdout } = await onHead(
      `date -d "$(qacct -j ${jobId} -t ${task} | sed -n 's/^end_time *//p' | tail -1)" +%s`,
    );
    expect(stdout.trim()).toMatch(/^\d+$/);
    return Number(stdout.trim()) * 1000;
  }

  /**
   * While `running` is pending, watches the request's job for a task GridEngine refuses to
   * start (Eqw), and resolves with when it refused (the "error reason" time of qstat -j).
   */
  async function refusedAt(request: () => number, running: Promise<unknown>) {
    let done = false;
    void running.finally(() => {
      done = true;
    });
    while (!done) {
      // Until the map has created the dbfile, there is nothing to read (a lookup creates none).
      const requests = existsSync(dbfile) ? await listRequests({ dbfile }) : [];
      const [info] = requests.filter((r) => r.id === request());
      const job = info?.meta.job as JobRef | undefined;
      if (job) {
        const { stdout } = await onHead(
          `t=$(qstat -j ${job.parts[0]?.jobId} 2>/dev/null | sed -n 's/^error reason *[0-9]*: *\\([0-9/]* [0-9:]*\\).*/\\1/p' | head -1); [ -n "$t" ] && date -d "$t" +%s`,
        );
        if (/^\d+$/.test(stdout.trim())) return Number(stdout.trim()) * 1000;
      }
      await sleep(300);
    }
    return undefined;
  }

  /** Prints a measured latency, for the record. */
  function record(what: string, ms: number) {
    process.stdout.write(`[faults] ${what}: ${(ms / 1000).toFixed(1)} s\n`);
  }

  /** Whether qstat still lists a job. */
  async function inQstat(job: JobRef): Promise<boolean> {
    const { code } = await onHead(`qstat -j ${job.parts.map((p) => p.jobId).join(",")}`);
    return code === 0;
  }

  /** {@link pythonAllBegun} in a directory of its own under {@link begunDirs}. */
  function allBegun(calls: number): string {
    return pythonAllBegun(`${begunDirs}-${Math.random().toString(36).slice(2)}`, calls);
  }

  async function mapTimed(
    f: ReturnType<typeof py>,
    args: unknown[][],
    extra: Partial<SheepdogConfig> = {},
    options: MapOptions & { watchRefusal?: boolean } = {},
  ) {
    const progress: MapProgress[] = [];
    const started = Date.now();
    const running = map(
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
    const refused = options.watchRefusal
      ? refusedAt(() => progress[0]?.request ?? 0, running)
      : Promise.resolve(undefined);
    const results = await running;
    const done = Date.now();
    const refusal = await refused;
    const request = progress.at(-1)?.request ?? 0;
    const errors = await getErrors(request, { dbfile });
    const { job } = await requestStatus(request, { dbfile });
    if (!job) throw new Error(`request ${request} has no job`);
    // Counts never pass the number of tasks, whatever reports twice.
    for (const p of progress) expect(p.results + p.errors).toBeLessThanOrEqual(p.tasks);
    return { results, errors, started, done, job, request, progress, refusal };
  }

  const defaultDirs = ["-wd $HOME/.sheepdog/", "-o $HOME/.sheepdog/", "-e $HOME/.sheepdog/"];

  /** A function that holds `mib` MiB in each of `children` processes for a while. */
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

  describe.concurrent("a task GridEngine kills or will not start becomes an error within 15 s", () => {
    it("over its memory limit (-l h_vmem): killed by GridEngine, with the peak memory", async () => {
      const run = await mapTimed(hog, [[3, 150]], { geOpts: ["-l h_vmem=300M", ...defaultDirs] });
      expect(run.results).toEqual([null]);
      const error = run.errors[0]?.[1];
      expect(error).toContain("exceeded its memory limit (h_vmem=300M)");
      expect(error).toMatch(/peak memory \d+\.\d MiB/);
      expect(error).toContain("scheduler failure 37");
      const end = await taskEnded(run.job.id, 1);
      record("h_vmem: error after the task's end", run.done - end);
      expect(run.done - end).toBeLessThanOrEqual(16_000);
    });

    it("a missing interpreter (shell): held in error by GridEngine, then cancelled", async () => {
      const f = py`
def f(x):
    return x
`;
      const run = await mapTimed(
        f,
        [[1], [2]],
        { shell: "/usr/bin/python2.7", chunkSize: 1 },
        { watchRefusal: true },
      );
      expect(run.results).toEqual([null, null]);
      for (const [, error] of run.errors) {
        expect(error).toContain("the scheduler holds it in an error state and will not run it");
        expect(error).toContain("/usr/bin/python2.7");
      }
      // The task never ran: its end is when its node refused it.
      expect(run.refusal).toBeDefined();
      record("missing interpreter: error after the refusal", run.done - (run.refusal ?? 0));
      expect(run.done - (run.refusal ?? 0)).toBeLessThanOrEqual(16_000);
      await vi.waitFor(async () => expect(await inQstat(run.job)).toBe(false), {
        timeout: 10_000,
        interval: 500,
      });
    });

    it("a node that refuses to start the job (no such working directory)", async () => {
      const f = py`
def f(x):
    return x
`;
      const run = await mapTimed(
        f,
        [[1]],
        { geOpts: ["-wd /nonexistent/sheepdog", "-o /tmp", "-e /tmp"] },
        { watchRefusal: true },
      );
      expect(run.results).toEqual([null]);
      const error = run.errors[0]?.[1];
      expect(error).toContain("the scheduler holds it in an error state");
      expect(error).toContain("/nonexistent/sheepdog");
      expect(run.refusal).toBeDefined();
      record("refused by its node: error after the refusal", run.done - (run.refusal ?? 0));
      expect(run.done - (run.refusal ?? 0)).toBeLessThanOrEqual(16_000);
    });

    it("a result that does not decode is an error of its task alone", async () => {
      const f = undecodableAtOne(241, 10);
      const run = await mapTimed(f, [[0], [1], [2]], { chunkSize: 3 });
      expect(run.results).toEqual([0, null, 20]);
      expect(run.errors.map(([args]) => args)).toEqual([[1]]);
      expect(run.errors[0]?.[1]).toContain("Sheepdog cannot decode");
      expect((await getResults(run.request, { dbfile })).map(([, r]) => r)).toEqual([0, null, 20]);
    });
  });

  /**
   * Starts a map of three tasks (`body` then `return <result>`, of `x` in 1, 2, 3) in a child
   * process on `port`, and resolves once they all run, with the request id.
   */
  async function mapInChild(port: number, body: string, result: string) {
    const script = join(dir, `child-${port}.mjs`);
    writeFileSync(
      script,
      `import { map, py } from ${JSON.stringify(dist)};
const f = py\`
def f(x):
${allBegun(3)}
    ${body}
    return ${result}
\`;
let said = false;
await map(f, [[1], [2], [3]], JSON.parse(process.argv[2]), {
  verbose: true,
  onProgress: (p) => { if (p.running === 3 && !said) { said = true; console.log("running " + p.request); } },
});
`,
    );
    const child = spawn(process.execPath, [
      script,
      JSON.stringify({ ...config, port, chunkSize: 1 }),
    ]);
    const output = { stdout: "", stderr: "" };
    child.stderr.on("data", (chunk) => {
      output.stderr += chunk;
    });
    const request = await new Promise<number>((resolve, reject) => {
      child.stdout.on("data", (chunk) => {
        output.stdout += chunk;
        const match = /running (\d+)/.exec(output.stdout);
        if (match) resolve(Number(match[1]));
      });
      child.on("exit", () => reject(new Error(`the map ended early: ${output.stderr}`)));
    });
    return { child, request, output };
  }

  it("a server killed with its map (SIGKILL) while tasks run: a new one on the port gets every result; no token in any log", async () => {
    const port = await unusedPort();
    const { child, request, output } = await mapInChild(port, "time.sleep(5)", "x * x");
    child.kill("SIGKILL");
    await new Promise((resolve) => child.on("exit", resolve));
    // The workers find no server when they report, and keep trying.
    await sleep(7000);
    const stderr: string[] = [];
    const spy = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
      stderr.push(String(chunk));
      return true;
    });
    const server = await serve({ port, dbfile, listen: "0.0.0.0" });
    try {
      const rows = await getResults(request, { ...login, block: true, verbose: true });
      expect(rows.map(([, result]) => result)).toEqual([1, 4, 9]);
      expect(await getErrors(request, { dbfile })).toEqual([]);
    } finally {
      spy.mockRestore();
      await server.close();
    }

    // Tokens never appear in logs: the workers' output and error files, this process's
    // stderr and the map's own.
    const { job } = await requestStatus(request, { dbfile });
    // The token is in its own file (the map was killed, so it is still there), not the script.
    const token = (await onHead(`cat .sheepdog/${job?.name}.token`)).stdout.trim();
    expect(token).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect((await onHead(`cat .sheepdog/${job?.name}.py`)).stdout).not.toContain(token);
    const logs = await onHead(`cat .sheepdog/${job?.name}.o* .sheepdog/${job?.name}.e*`);
    expect(logs.stdout).toContain("SHEEPDOG-REPORT v1");
    // The workers did log their trouble reaching the server.
    expect(logs.stdout).toContain("Retrying for up to 600 s");
    for (const text of [logs.stdout, logs.stderr, stderr.join(""), output.stdout, output.stderr]) {
      expect(text).not.toContain(token);
    }
    // The job script and the token file are their owner's alone.
    expect((await onHead(`stat -c %a .sheepdog/${job?.name}.py`)).stdout.trim()).toBe("600");
    expect((await onHead(`stat -c %a .sheepdog/${job?.name}.token`)).stdout.trim()).toBe("600");
  }, 120_000);

  it("a server killed with its map while tasks run: the next map on the port and dbfile receives the first's results", async () => {
    const port = await unusedPort();
    const { child, request } = await mapInChild(port, "time.sleep(4)", "x + 100");
    child.kill("SIGKILL");
    await new Promise((resolve) => child.on("exit", resolve));
    // The next map starts a new server on the port; while it runs, the first map's workers
    // report to it.
    const next = py`
def f(x):
    import time
    time.sleep(8)
    return -x
`;
    expect(await map(next, [[1]], { ...config, port })).toEqual([-1]);
    const rows = await getResults(request, { dbfile });
    expect(rows.map(([, result]) => result)).toEqual([101, 102, 103]);
  }, 120_000);

  it("the same task run twice (by hand over SSH): the first report wins and counts once", async () => {
    const f = py`
def f(x):
${allBegun(2)}
    time.sleep(8 if x == 1 else 0)
    return [x, os.environ.get("JOB_ID", "by hand")]
`;
    let name: string | undefined;
    let again: Promise<unknown> | undefined;
    const run = await mapTimed(
      f,
      [[0], [1]],
      { chunkSize: 1 },
      {
        onProgress: (p) => {
          // Task 1 has reported while task 2 still runs: run task 1 again by hand, twice.
          if (p.results === 1 && !again) {
            again = (async () => {
              const { job } = await requestStatus(p.request, { dbfile });
              name = job?.name;
              const runs = [];
              for (let i = 0; i < 2; i++) {
                runs.push(
                  await onHead(`cd .sheepdog && SGE_TASK_ID=1 /usr/bin/python3 ${job?.name}.py`),
                );
              }
              return runs;
            })();
          }
        },
      },
    );
    const byHand = (await again) as { code: number; stdout: string; stderr: string }[];
    expect(name).toBeDefined();
    for (const result of byHand) {
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain("SHEEPDOG-REPORT v1");
    }
    const jobId = run.job.id;
    expect(run.results).toEqual([
      [0, jobId],
      [1, jobId],
    ]);
    expect(run.progress.at(-1)).toMatchObject({ tasks: 2, results: 2, errors: 0 });
  }, 120_000);

  it("a task GridEngine runs again (-r y, qmod -rj) after it reported: the first report wins and counts once", async () => {
    // One task of two calls: the first reports at once (a call of over a second is posted
    // when it returns); the second is still computing when the task is rescheduled.
    const f = py`
def f(x):
    import os, time
    restarted = os.environ.get("RESTARTED")
    time.sleep(1.5 if x == 0 else (60 if restarted == "0" else 0))
    return [x, restarted]
`;
    let rescheduled: ReturnType<typeof onHead> | undefined;
    const run = await mapTimed(
      f,
      [[0], [1]],
      { chunkSize: 2, geOpts: ["-r y", ...defaultDirs] },
      {
        onProgress: (p) => {
          if (p.results === 1 && !rescheduled) {
            rescheduled = requestStatus(p.request, { dbfile }).then(({ job }) =>
              onHead(`qmod -rj ${job?.parts[0]?.jobId}.1`),
            );
          }
        },
      },
    );
    const qmod = await rescheduled;
    expect(qmod?.code, qmod?.stderr).toBe(0);
    expect(qmod?.stdout).toContain("Pushed rescheduling");
    // The first call's result is its first run's; the second call reported only from the re-run.
    expect(run.results).toEqual([
      [0, "0"],
      [1, "1"],
    ]);
    expect(run.errors).toEqual([]);
    expect(run.progress.at(-1)).toMatchObject({ results: 2, errors: 0 });
    // GridEngine did run the task twice: its first run's accounting says "rescheduling".
    const accounting = await vi.waitFor(
      async () => {
        const { stdout } = await onHead(`qacct -j ${run.job.parts[0]?.jobId}`);
        expect(stdout.match(/^failed/gm)).toHaveLength(2);
        return stdout;
      },
      { timeout: 15_000, interval: 500 },
    );
    expect(accounting).toMatch(/^failed\s+25\s*: rescheduling/m);
  }, 120_000);

  describe("stopping a map", () => {
    const sleepy = py`
def f(x):
    import time
    time.sleep(120)
    return x
`;

    async function abortWhenRunning(keepJob: boolean, beforeAbort?: () => void) {
      const controller = new AbortController();
      let request = 0;
      const error = await map(
        sleepy,
        [[1], [2]],
        { ...config, chunkSize: 1 },
        {
          signal: controller.signal,
          keepJob,
          onProgress: (p) => {
            request = p.request;
            if (p.running > 0 && !controller.signal.aborted) {
              beforeAbort?.();
              controller.abort();
            }
          },
        },
      ).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "ABORTED" });
      const [info] = (await listRequests({ dbfile })).filter((r) => r.id === request);
      return { request, job: info?.meta.job as JobRef, port: info?.meta.port as number };
    }

    it("an AbortSignal cancels the job (qdel), closes the server and the SSH connection", async () => {
      const before = connectionsTo(cluster.port);
      let during: string[] = [];
      const { job, port } = await abortWhenRunning(false, () => {
        during = connectionsTo(cluster.port);
      });
      // The map had its own connection, and it is gone.
      expect(during.filter((c) => !before.includes(c))).toHaveLength(1);
      expect(connectionsTo(cluster.port).filter((c) => !before.includes(c))).toEqual([]);
      await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
      await vi.waitFor(async () => expect(await inQstat(job)).toBe(false), {
        timeout: 15_000,
        interval: 500,
      });
    }, 60_000);

    it("with keepJob the job runs on", async () => {
      const before = connectionsTo(cluster.port);
      const { request, job } = await abortWhenRunning(true);
      expect(connectionsTo(cluster.port).filter((c) => !before.includes(c))).toEqual([]);
      expect(await inQstat(job)).toBe(true);
      await cancelRequest(request, login);
      await vi.waitFor(async () => expect(await inQstat(job)).toBe(false), {
        timeout: 15_000,
        interval: 500,
      });
    }, 60_000);

    it("Ctrl-C in a program running map cancels the job, then ends the program", async () => {
      const script = join(dir, "interrupted.mjs");
      writeFileSync(
        script,
        `import { map, py } from ${JSON.stringify(dist)};
const f = py\`
def f(x):
    import time
    time.sleep(120)
\`;
await map(f, [[1], [2]], JSON.parse(process.argv[2]), {
  onProgress: (p) => { if (p.running > 0) console.log("running " + p.request); },
});
console.log("not interrupted");
`,
      );
      const child = spawn(process.execPath, [script, JSON.stringify({ ...config, chunkSize: 1 })]);
      let out = "";
      let err = "";
      child.stderr.on("data", (chunk) => {
        err += chunk;
      });
      const ended = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
        child.on("exit", (code, signal) => resolve({ code, signal })),
      );
      const request = await new Promise<number>((resolve) =>
        child.stdout.on("data", (chunk) => {
          out += chunk;
          const match = /running (\d+)/.exec(out);
          if (match) resolve(Number(match[1]));
        }),
      );
      child.kill("SIGINT");
      expect(await ended, err).toEqual({ code: null, signal: "SIGINT" });
      expect(out).not.toContain("not interrupted");
      const [info] = (await listRequests({ dbfile })).filter((r) => r.id === request);
      const job = info?.meta.job as JobRef;
      await vi.waitFor(async () => expect(await inQstat(job)).toBe(false), {
        timeout: 15_000,
        interval: 500,
      });
    }, 60_000);
  });

  it("configuration cannot inject commands or directives, and nothing is submitted", async () => {
    const marker = `sheepdog-injected-${process.pid}`;
    const f = py`
def f(x):
    return x
`;
    const before = existsSync(dbfile) ? (await listRequests({ dbfile })).length : 0;
    const attempts: [Partial<SheepdogConfig>, string][] = [
      [{ geOpts: [`-l h_rt=0:1:0\n#$ -N evil`] }, "CONFIG_INVALID"],
      [{ geOpts: ["-N evil"] }, "CONFIG_INVALID"],
      [{ geOpts: [`-l h_rt=0:1:0 # -N evil`] }, "CONFIG_INVALID"],
      // Words qsub reads as stray arguments: it refuses the job, and no shell ever sees them.
      [{ geOpts: [`-l h_rt=0:1:0; touch ${marker}`] }, "SUBMIT_FAILED"],
      [{ shell: `/usr/bin/python3; touch ${marker}` }, "CONFIG_INVALID"],
      [{ shell: `$(touch ${marker})` }, "CONFIG_INVALID"],
      [{ sshDir: `.sheepdog; touch ${marker}` }, "CONFIG_INVALID"],
      [{ sshDir: "-rf" }, "CONFIG_INVALID"],
    ];
    for (const [extra, code] of attempts) {
      const error = await map(f, [[1]], { ...config, ...extra }).catch((e: unknown) => e);
      expect(error, JSON.stringify(extra)).toMatchObject({ code });
    }
    expect((await onHead(`ls ${marker} .sheepdog/${marker} 2>&1; true`)).stdout).toContain(
      "No such file",
    );
    expect((await onHead(`find . -name '${marker}*' | wc -l`)).stdout.trim()).toBe("0");
    // The job qsub refused left a request, with no job, listed as failed (not in progress).
    const added = (await listRequests({ dbfile })).slice(before);
    expect(added.length).toBeGreaterThanOrEqual(1);
    expect(added.filter((r) => r.meta.job !== undefined)).toEqual([]);
    for (const request of added) {
      expect(request.meta.cancelled).toEqual({ at: expect.any(Number), reason: "failed" });
    }
  });
});
