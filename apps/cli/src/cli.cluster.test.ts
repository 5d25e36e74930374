import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeCluster, pythonAllBegun, testSchedulers, unusedPort } from "@sheepdog/testcluster";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { cli, cliRunner, loginFlags, onHeadOf } from "./__fixtures__/cli-runner.js";

for (const scheduler of testSchedulers) {
  describeCluster(`the sheepdog command on the test cluster's ${scheduler}`, (cluster) => {
    let cwd: string;
    /** Where, on the head node, `slow_square` marks each of its three calls as begun. */
    const startedDir = `/tmp/sheepdog-cli-started-${process.pid}-${scheduler}-${Date.now()}`;
    /**
     * How to log in: request commands give these and take the host from the request, since SSH
     * settings are never read from a dbfile.
     */
    const sshFlags = [...loginFlags(cluster)];
    const flags = ["--host", cluster.host, "--scheduler", scheduler, ...sshFlags];

    const sheepdog = cliRunner(() => cwd);

    /**
     * Starts `sheepdog map` in the background with `stdin` as its arguments; resolves once it
     * has said its request id. `output.stderr` keeps growing with what it says after.
     */
    async function startMap(args: string[], stdin: string) {
      const child = spawn(process.execPath, [cli, "map", ...args, ...flags], { cwd });
      child.stdin.end(stdin);
      const output = { stderr: "" };
      const id = await new Promise<string>((resolve, reject) => {
        child.stderr.on("data", (chunk) => {
          output.stderr += chunk;
          const match = /request (\d+):/.exec(output.stderr);
          if (match?.[1]) resolve(match[1]);
        });
        child.on("close", (code) =>
          reject(new Error(`sheepdog map ended (${code}): ${output.stderr}`)),
        );
      });
      return { child, id, output };
    }

    async function waitForTasks(
      id: string,
      done: (status: { tasks: Record<string, number> }) => boolean,
    ) {
      for (let tries = 0; tries < 120; tries++) {
        const { stdout } = await sheepdog(["status", id, "--json", ...sshFlags]);
        const status = JSON.parse(stdout);
        if (status.taskStates && done({ tasks: status.taskStates })) return status;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      throw new Error(`request ${id} never reached the expected state`);
    }

    beforeAll(() => {
      cwd = mkdtempSync(join(tmpdir(), "sheepdog-cli-cluster-"));
      writeFileSync(
        join(cwd, "jobs.py"),
        [
          "import time",
          "",
          "def square(x):",
          "    return x * x",
          "",
          "def slow_square(x):",
          pythonAllBegun(startedDir, 3),
          "    time.sleep(4)",
          "    return x * x",
          "",
          "def die(x):",
          "    import os, signal",
          "    os.kill(os.getpid(), signal.SIGKILL)",
          "",
          "def nap(seconds):",
          "    time.sleep(seconds)",
          "    return seconds",
          "",
        ].join("\n"),
      );
    });
    afterAll(async () => {
      rmSync(cwd, { recursive: true, force: true });
      await onHead(`rm -rf ${startedDir}`);
    });

    const onHead = (command: string) => onHeadOf(cluster, command);

    it(`maps over SSH and ${scheduler}, results as JSON lines`, async () => {
      const result = await sheepdog(
        ["map", "jobs.py:square", "--args", "-", ...flags],
        "[2]\n[3]\n[4]\n",
      );
      expect(result.stderr).toMatch(/request \d+: 3\/3 done \(0 failed\)/);
      expect(result.stdout).toBe("4\n9\n16\n");
      expect(result.code).toBe(0);
    });

    it("shows a running job's tasks, and cancels it", async () => {
      const submitted = await sheepdog(
        ["map", "jobs.py:nap", "--args", "-", "--async", ...flags],
        "[60]\n[60]\n",
      );
      expect(submitted.code).toBe(0);
      const id = submitted.stdout.trim();
      // status and cancel reach the cluster as the request was submitted: no flags needed.
      const running = await waitForTasks(id, ({ tasks }) => tasks.running === 2);
      expect(running).toMatchObject({ tasks: 2, results: 0, errors: 0 });
      const cancelled = await sheepdog(["cancel", id, ...sshFlags]);
      expect(cancelled.code).toBe(0);
      expect(cancelled.stdout).toMatch(new RegExp(`^cancelled job \\d+ of request ${id}$`, "m"));
      // The request is marked cancelled: "sheepdog requests" no longer shows it in progress.
      const listed = (await sheepdog(["requests", "--json"])).stdout.trim().split("\n");
      const request = listed.map((line) => JSON.parse(line)).find((r) => String(r.id) === id);
      expect(request.meta.cancelled).toEqual({ at: expect.any(Number), reason: "cancelled" });
      await waitForTasks(id, ({ tasks }) => tasks.running === 0 && tasks.queued === 0);
    }, 150_000);

    it("a task that died while nobody watched: status, results (exit 1) and errors tell, with its cause", async () => {
      const port = String(await unusedPort());
      const submitted = await sheepdog(
        ["map", "jobs.py:die", "--args", "-", "--async", "--port", port, ...flags],
        "[1]\n",
      );
      expect(submitted.code).toBe(0);
      const id = submitted.stdout.trim();
      // A server for its workers, which watches nothing: no map waits for the request.
      const server = spawn(
        process.execPath,
        [cli, "serve", "--port", port, "--listen", "0.0.0.0"],
        {
          cwd,
        },
      );
      try {
        // A lookup asks the cluster, records the death with its cause, and says so.
        let status: { errors?: number } = {};
        for (let tries = 0; tries < 120 && status.errors !== 1; tries++) {
          await new Promise((resolve) => setTimeout(resolve, 1000));
          status = JSON.parse((await sheepdog(["status", id, "--json", ...sshFlags])).stdout);
        }
        expect(status).toMatchObject({ tasks: 1, results: 0, errors: 1 });
        const results = await sheepdog(["results", id, ...sshFlags]);
        expect(results.code).toBe(1);
        expect(results.stderr).toContain("1 of 1 tasks failed");
        const errors = await sheepdog(["errors", id, ...sshFlags]);
        expect(errors.stdout).toMatch(/\[signal\].*signal 9/s);
      } finally {
        server.kill("SIGTERM");
      }
    }, 150_000);

    it("on Ctrl-C with --keep-jobs, exits 130 and leaves the job running", async () => {
      const { child, id, output } = await startMap(
        ["jobs.py:nap", "--args", "-", "--keep-jobs"],
        "[30]\n",
      );
      await waitForTasks(id, ({ tasks }) => (tasks.running ?? 0) === 1);
      const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
      child.kill("SIGINT");
      expect(await exited).toBe(130);
      expect(output.stderr).toContain("The map was aborted");
      const status = await waitForTasks(id, () => true);
      expect(status.taskStates).toMatchObject({ running: 1 });
      await sheepdog(["cancel", id, ...sshFlags]);
    }, 150_000);

    it("recovers results from the job's output files when the server never came back", async () => {
      // The map's process dies (SIGKILL) while its tasks compute: nothing is left to receive their
      // reports, and the workers give up after a second, their reports printed to their output.
      const { child, id } = await startMap(
        ["jobs.py:slow_square", "--args", "-", "--chunk-size", "1", "--retry-window", "1"],
        "[5]\n[6]\n[7]\n",
      );
      // Killed only once every call has begun: a task the scheduler had yet to start, or one
      // that had yet to fetch its arguments, would find no server and end without a report.
      await vi.waitFor(
        async () =>
          expect(
            (await onHead(`ls ${startedDir} 2>/dev/null || true`))
              .split(/\s+/)
              .filter(Boolean)
              .sort(),
          ).toEqual(["5", "6", "7"]),
        { timeout: 120_000, interval: 500 },
      );
      child.kill("SIGKILL");
      await waitForTasks(id, ({ tasks }) => tasks.finished === 3);
      const before = await sheepdog(["results", id]);
      expect(before.stdout).toBe("[5] -> null\n[6] -> null\n[7] -> null\n");
      const recovered = await sheepdog(["recover", id, ...sshFlags]);
      expect(recovered.stdout.trim()).toBe(
        `request ${id}: 3 reports in the job's output files, 3 stored now, 0 tasks still without a report`,
      );
      expect(recovered.code).toBe(0);
      const after = await sheepdog(["results", id]);
      expect(after.stdout).toBe("[5] -> 25\n[6] -> 36\n[7] -> 49\n");
      const again = await sheepdog(["recover", id, ...sshFlags]);
      expect(again.stdout).toContain("3 reports in the job's output files, 0 stored now");
    }, 150_000);
  });
}
