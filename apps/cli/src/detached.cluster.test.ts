import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JobRef } from "@sheepdog/core";
import { listRequests } from "@sheepdog/core";
import { asNobody, canSwitchUsers, describeCluster, testSchedulers } from "@sheepdog/testcluster";
import { afterAll, beforeAll, expect, it } from "vitest";
import { cli, cliRunner, jsonLines, loginFlags, onHeadOf } from "./__fixtures__/cli-runner.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const scheduler of testSchedulers) {
  describeCluster(`detached requests on the test cluster's ${scheduler}`, (cluster) => {
    let cwd: string;
    const sshDir = `.sheepdog-detached-${process.pid}-${scheduler}`;
    /** A gate on the head node's shared /tmp: gated calls wait until it exists. */
    const gate = `/tmp/sheepdog-detached-gate-${process.pid}-${scheduler}`;
    const sshFlags = [...loginFlags(cluster), "--ssh-dir", sshDir];
    const flags = ["--host", cluster.host, "--scheduler", scheduler, ...sshFlags];

    const sheepdog = cliRunner(() => cwd);

    /**
     * `sheepdog map --detach`, SIGKILLed as soon as it has printed its request id: the job
     * must run and keep its results without it.
     */
    async function submitAndKill(target: string, args: unknown[][], extra: string[] = []) {
      const child = spawn(
        process.execPath,
        [cli, "map", target, "--args", "-", "--detach", ...flags, ...extra],
        { cwd },
      );
      child.stdin.end(args.map((a) => JSON.stringify(a)).join("\n"));
      let stdout = "";
      let stderr = "";
      child.stderr.on("data", (chunk) => {
        stderr += chunk;
      });
      const id = await new Promise<number>((resolve, reject) => {
        child.stdout.on("data", (chunk) => {
          stdout += chunk;
          const match = /^(\d+)\n/.exec(stdout);
          if (match?.[1]) {
            child.kill("SIGKILL");
            resolve(Number(match[1]));
          }
        });
        child.on("close", (code) => reject(new Error(`sheepdog map ended (${code}): ${stderr}`)));
      });
      return id;
    }

    const onHead = (command: string) => onHeadOf(cluster, command);

    async function metaOf(id: number): Promise<Record<string, unknown>> {
      const found = (await listRequests({ dbfile: join(cwd, "sheepdog.sqlite") })).find(
        (r) => r.id === id,
      );
      if (!found) throw new Error(`no request ${id}`);
      return found.meta;
    }

    async function countsOf(id: number) {
      const found = (await listRequests({ dbfile: join(cwd, "sheepdog.sqlite") })).find(
        (r) => r.id === id,
      );
      return { tasks: found?.tasks, results: found?.results, errors: found?.errors };
    }

    /** Whether any part of the request's job is still known to the scheduler as queued or running. */
    async function jobRuns(id: number): Promise<boolean> {
      const job = (await metaOf(id)).job as JobRef;
      const ids = job.parts.map((part) => part.jobId);
      const check =
        scheduler === "slurm"
          ? `squeue -h -j ${ids.join(",")} 2>/dev/null | grep -q . && echo runs || echo ended`
          : `for j in ${ids.join(" ")}; do qstat -j $j >/dev/null 2>&1 && echo runs; done; echo ended`;
      return (await onHead(check)).includes("runs");
    }

    async function until(what: string, done: () => Promise<boolean>, seconds = 180) {
      for (let i = 0; i < seconds * 2; i++) {
        if (await done()) return;
        await sleep(500);
      }
      throw new Error(`timed out waiting until ${what}`);
    }

    /** The staged directory of a request on the head node (from its meta), and its spool's count. */
    async function stagedOf(id: number) {
      const staged = (await metaOf(id)).staged as { dir: string; spoolDir: string };
      const count = await onHead(
        `ls ${staged.spoolDir} 2>/dev/null | grep -c '\\.reports$' || true`,
      );
      return { ...staged, spooled: Number(count.trim()) };
    }

    async function exists(path: string): Promise<boolean> {
      return (await onHead(`test -e ${path} && echo yes || echo no`)).trim() === "yes";
    }

    beforeAll(() => {
      cwd = mkdtempSync(join(tmpdir(), "sheepdog-cli-detached-"));
      writeFileSync(
        join(cwd, "jobs.py"),
        [
          "import os, time",
          "",
          "def triple(x):",
          "    return x * 3",
          "",
          "def gated(x, wait):",
          "    while wait and not os.path.exists(GATE):",
          "        time.sleep(0.2)",
          "    return x * 3",
          "",
          "def doomed(x):",
          "    if x == 3:",
          "        os.kill(os.getpid(), 9)",
          "    return x * 3",
          "",
          `GATE = ${JSON.stringify(gate)}`,
          "",
        ].join("\n"),
      );
    });
    afterAll(async () => {
      rmSync(cwd, { recursive: true, force: true });
      await onHead(`rm -rf ${gate} ${sshDir}`).catch(() => undefined);
    });

    it("a 500-call map whose client is killed right after submitting is collected whole by attach from a new process after the job ended", async () => {
      const args = Array.from({ length: 500 }, (_, i) => [i]);
      const id = await submitAndKill("jobs.py:triple", args, ["--chunk-size", "25"]);
      await until("the job has ended", async () => !(await jobRuns(id)));
      const before = await stagedOf(id);
      // Nothing answered the workers: every report of the 20 tasks is in the spool.
      expect(before.spooled).toBeGreaterThanOrEqual(20);
      expect(await countsOf(id)).toEqual({ tasks: 500, results: 0, errors: 0 });

      const attached = await sheepdog(["attach", String(id), ...sshFlags]);
      expect(attached.code).toBe(0);
      expect(attached.stdout).toBe(args.map(([x]) => `${(x as number) * 3}\n`).join(""));
      expect(await countsOf(id)).toEqual({ tasks: 500, results: 500, errors: 0 });
      // Every result is home: the request's files have left the cluster.
      expect(await exists(before.dir)).toBe(false);
      expect((await metaOf(id)).stagedRemoved).toEqual(expect.any(Number));
    }, 300_000);

    it("a client that comes back in the middle gets the spooled results from the cluster and the rest live", async () => {
      // The first 10 calls end at once; the other 10 wait for the gate.
      const args = Array.from({ length: 20 }, (_, i) => [i, i >= 10]);
      const id = await submitAndKill("jobs.py:gated", args, ["--chunk-size", "1"]);
      await until(
        "the first ten tasks have spooled",
        async () => (await stagedOf(id)).spooled >= 10,
      );
      const { spoolDir } = await stagedOf(id);
      const child = spawn(process.execPath, [cli, "attach", String(id), ...sshFlags], { cwd });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk) => {
        stdout += chunk;
      });
      child.stderr.on("data", (chunk) => {
        stderr += chunk;
      });
      const ended = new Promise<number | null>((resolve) => child.on("close", resolve));
      await until(
        "attach has brought the spool home",
        async () => (await countsOf(id)).results === 10,
      );
      // The spool cannot take anything now: what the gated tasks report must come live.
      await onHead(`chmod 500 ${spoolDir} && touch ${gate}`);
      try {
        expect({ code: await ended, stderr }).toMatchObject({ code: 0 });
      } finally {
        await onHead(`chmod 700 ${spoolDir} 2>/dev/null; rm -f ${gate}`);
      }
      expect(stdout).toBe(args.map(([x]) => `${(x as number) * 3}\n`).join(""));
      expect(await countsOf(id)).toEqual({ tasks: 20, results: 20, errors: 0 });
    }, 300_000);

    it("a collection cut off after storing loses nothing, and the next one finishes without duplicates", async () => {
      const args = Array.from({ length: 60 }, (_, i) => [i]);
      const id = await submitAndKill("jobs.py:triple", args, ["--chunk-size", "6"]);
      await until("the job has ended", async () => !(await jobRuns(id)));
      const { spoolDir, spooled } = await stagedOf(id);
      expect(spooled).toBeGreaterThanOrEqual(10);
      // The files can be read but not removed: a collection that stores every report and then
      // loses its connection before it removes the files looks the same.
      await onHead(`chmod 500 ${spoolDir}`);
      try {
        await sheepdog(["status", String(id), ...sshFlags]);
        expect(await countsOf(id)).toEqual({ tasks: 60, results: 60, errors: 0 });
        expect((await stagedOf(id)).spooled).toBe(spooled);
      } finally {
        await onHead(`chmod 700 ${spoolDir}`);
      }
      // Two collectors at once, over the same files already stored: each task counts once.
      const [first, second] = await Promise.all([
        sheepdog(["attach", String(id), ...sshFlags]),
        sheepdog(["attach", String(id), ...sshFlags]),
      ]);
      const expected = args.map(([x]) => `${(x as number) * 3}\n`).join("");
      expect(first.stdout).toBe(expected);
      expect(second.stdout).toBe(expected);
      expect(await countsOf(id)).toEqual({ tasks: 60, results: 60, errors: 0 });
      const cleanup = await sheepdog(["cleanup", "--json", ...flags]);
      expect(cleanup.code).toBe(0);
      const entries = jsonLines(cleanup.stdout);
      expect(entries.filter((e: { request?: number }) => e.request === id)).toEqual([]);
    }, 300_000);

    it("two collectors at once while the job runs store each result once", async () => {
      const args = Array.from({ length: 40 }, (_, i) => [i, true]);
      const id = await submitAndKill("jobs.py:gated", args, ["--chunk-size", "2"]);
      const collectors = [0, 1].map(() => sheepdog(["attach", String(id), ...sshFlags]));
      await sleep(3000);
      await onHead(`touch ${gate}`);
      try {
        const outcomes = await Promise.all(collectors);
        const expected = args.map(([x]) => `${(x as number) * 3}\n`).join("");
        for (const outcome of outcomes) {
          expect(outcome.code).toBe(0);
          expect(outcome.stdout).toBe(expected);
        }
      } finally {
        await onHead(`rm -f ${gate}`);
      }
      expect(await countsOf(id)).toEqual({ tasks: 40, results: 40, errors: 0 });
    }, 300_000);

    it("a task that dies while its client is away is reported with the scheduler's cause", async () => {
      const args = Array.from({ length: 6 }, (_, i) => [i]);
      const id = await submitAndKill("jobs.py:doomed", args, ["--chunk-size", "1"]);
      await until("the job has ended", async () => !(await jobRuns(id)));
      const attached = await sheepdog(["attach", String(id), ...sshFlags]);
      expect(attached.code).toBe(1);
      expect(attached.stdout).toBe("0\n3\n6\nnull\n12\n15\n");
      const errors = await sheepdog(["errors", String(id), "--json", ...sshFlags]);
      const [death] = jsonLines<{ args: unknown[]; error: string }>(errors.stdout);
      expect(death?.args).toEqual([3]);
      expect(death?.error).toContain(
        "ended without reporting a result for these arguments [signal]",
      );
      expect(death?.error).toContain("killed by signal 9 (SIGKILL)");
    }, 300_000);

    it.skipIf(!canSwitchUsers)(
      "another user can neither read the staged tasks nor write into the spool",
      async () => {
        const id = await submitAndKill("jobs.py:gated", [[7, true]], ["--chunk-size", "1"]);
        try {
          const { dir, spoolDir } = await stagedOf(id);
          const home = (path: string) => (path.startsWith("/") ? path : `${cluster.home}/${path}`);
          const read = await asNobody("cat", [`${home(dir)}/tasks-0.pack`]);
          expect(read.status).not.toBe(0);
          expect(read.stderr).toMatch(/Permission denied/);
          expect(read.stdout).toBe("");
          const listed = await asNobody("ls", [home(spoolDir)]);
          expect(listed.stderr).toMatch(/Permission denied/);
          const planted = await asNobody("touch", [
            `${home(spoolDir)}/1-${"A".repeat(22)}.reports`,
          ]);
          expect(planted.status).not.toBe(0);
          expect(planted.stderr).toMatch(/Permission denied/);
          await onHead(`touch ${gate}`);
          const attached = await sheepdog(["attach", String(id), ...sshFlags]);
          expect(attached.stdout).toBe("21\n");
        } finally {
          await onHead(`rm -f ${gate}`);
        }
      },
      300_000,
    );

    it("cleanup removes what a cancelled request left, and keeps a running one's", async () => {
      const cancelled = await submitAndKill(
        "jobs.py:gated",
        [
          [1, true],
          [2, true],
        ],
        ["--chunk-size", "1"],
      );
      const running = await submitAndKill("jobs.py:gated", [[3, true]], ["--chunk-size", "1"]);
      expect((await sheepdog(["cancel", String(cancelled), ...sshFlags])).code).toBe(0);
      const { dir: cancelledDir } = await stagedOf(cancelled);
      const { dir: runningDir } = await stagedOf(running);
      const dry = await sheepdog(["cleanup", "--dry-run", ...flags]);
      expect(dry.code).toBe(0);
      expect(dry.stdout).toContain(cancelledDir);
      expect(await exists(cancelledDir)).toBe(true);

      const cleaned = await sheepdog(["cleanup", "--json", ...flags]);
      const entries = jsonLines<{ request: number }>(cleaned.stdout);
      const byRequest = new Map(entries.map((e) => [e.request, e]));
      expect(byRequest.get(cancelled)).toMatchObject({ removed: true });
      expect(byRequest.get(running)).toMatchObject({ removed: false, state: "running" });
      expect(await exists(cancelledDir)).toBe(false);
      expect(await exists(runningDir)).toBe(true);
      await sheepdog(["cancel", String(running), ...sshFlags]);
      const forced = await sheepdog(["cleanup", "--force", "--json", ...flags]);
      expect(forced.code).toBe(0);
      expect(await exists(runningDir)).toBe(false);
    }, 300_000);
  });
}
