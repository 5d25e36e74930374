import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { describeCluster, sshArgs } from "./index.ts";

const run = promisify(execFile);

describeCluster("test cluster smoke", (cluster) => {
  const ssh = (command: string) => run("ssh", [...sshArgs(cluster), command], { timeout: 60_000 });

  it("logs in over SSH as the unprivileged user, with strict host keys", async () => {
    const { stdout } = await ssh("id -un; id -u");
    const [user, uid] = stdout.trim().split("\n");
    expect(user).toBe(cluster.user);
    expect(Number(uid)).toBeGreaterThan(0);
  });

  it("runs a 4-task array job with qsub and reads each task's output", async () => {
    const dir = `smoke-${process.pid}-${Date.now()}`;
    const script = [
      `#!${cluster.python}`,
      "import os, socket",
      'print("task", os.environ["SGE_TASK_ID"], "of", os.environ["SGE_TASK_LAST"], "on", socket.gethostname())',
    ].join("\n");
    const submit = await ssh(
      [
        `mkdir -p ${dir} && cd ${dir}`,
        `cat > job.py <<'PY'\n${script}\nPY`,
        `qsub -sync y -terse -t 1-4 -N smoke -S ${cluster.python} -wd $HOME/${dir} -o $HOME/${dir} -e $HOME/${dir} job.py`,
      ].join("\n"),
    );
    const jobId = submit.stdout.trim().split("\n")[0]?.split(".")[0];
    expect(jobId).toMatch(/^\d+$/);

    const { stdout } = await ssh(
      `cd ${dir} && for t in 1 2 3 4; do cat smoke.o${jobId}.$t; done; cat smoke.e${jobId}.*; cd && rm -rf ${dir}`,
    );
    expect(stdout.trim().split("\n")).toEqual(
      [1, 2, 3, 4].map((t) => `task ${t} of 4 on ${cluster.hostname}`),
    );
  }, 60_000);

  it("refuses a host key that is not in known_hosts", async () => {
    const args = sshArgs(cluster).map((arg) =>
      arg.startsWith("UserKnownHostsFile=") ? "UserKnownHostsFile=/dev/null" : arg,
    );
    await expect(run("ssh", [...args, "true"], { timeout: 30_000 })).rejects.toMatchObject({
      stderr: expect.stringContaining("Host key verification failed"),
    });
  });
});
