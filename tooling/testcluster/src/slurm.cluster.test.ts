import { expect, it } from "vitest";
import { describeCluster } from "./index.ts";
import type { SacctRecord } from "./slurm.ts";
import { runAsLoginUser, slurmConfig, slurmOf, waitForSacct } from "./slurm.ts";

/** The records of array tasks or plain jobs, without their steps (`123_4`, not `123_4.batch`). */
const jobsOnly = (records: SacctRecord[]) => records.filter((r) => !r.jobId.includes("."));
/**
 * Whether sacct has each of these array tasks with its end. A task can leave the queue before
 * slurmdbd has its end, and a job's first task first shows as the bare job id (`123`, not
 * `123_1`) for a second or two.
 */
const tasksEnded = (jobId: string, tasks: number[]) => (records: SacctRecord[]) =>
  tasks.every((task) =>
    records.some(
      (r) => r.jobId === `${jobId}_${task}` && !/^(PENDING|RUNNING|REQUEUED)/.test(r.state),
    ),
  );

describeCluster("Slurm on the test cluster", (cluster) => {
  const slurm = slurmOf(cluster);

  /**
   * Writes a Python job script in a fresh directory of the login user's home, submits it with
   * `sbatch --parsable --wait` and the given options, and answers its job id and each task's
   * output (by array index) once the job has ended, whatever its exit status.
   */
  async function submitAndWait(script: string, options: string) {
    const dir = `slurm-smoke-${process.pid}-${Date.now()}`;
    const { stdout } = await runAsLoginUser(
      cluster,
      [
        `mkdir -p ${dir} && cd ${dir}`,
        `cat > job.py <<'PY'\n#!${cluster.python}\n${script}\nPY`,
        `sbatch --parsable --wait ${options} -o out.%a job.py || true`,
        `cat out.*; cd && rm -rf $HOME/${dir}`,
      ].join("\n"),
    );
    const [idLine = "", ...output] = stdout.trim().split("\n");
    const jobId = idLine.split(";")[0] ?? "";
    expect(jobId).toMatch(/^\d+$/);
    return { jobId, output };
  }

  it("runs a 4-task array submitted over SSH, and sacct has every task COMPLETED", async () => {
    const { jobId, output } = await submitAndWait(
      'import os, socket\nprint("task", os.environ["SLURM_ARRAY_TASK_ID"], "on", socket.gethostname())',
      "--array=1-4",
    );
    expect(output).toEqual([1, 2, 3, 4].map((t) => `task ${t} on ${slurm.nodeName}`));

    const records = await waitForSacct(cluster, jobId, tasksEnded(jobId, [1, 2, 3, 4]));
    expect(jobsOnly(records).sort((a, b) => a.jobId.localeCompare(b.jobId))).toEqual(
      [1, 2, 3, 4].map((t) => ({ jobId: `${jobId}_${t}`, state: "COMPLETED", exitCode: "0:0" })),
    );
  }, 60_000);

  it("accounts a task that SIGKILLs itself as FAILED by signal 9", async () => {
    const { jobId } = await submitAndWait(
      "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
      "--array=1",
    );
    const records = await waitForSacct(cluster, jobId, tasksEnded(jobId, [1]));
    expect(jobsOnly(records)).toEqual([{ jobId: `${jobId}_1`, state: "FAILED", exitCode: "0:9" }]);
  }, 60_000);

  it("reports MaxArraySize in scontrol show config, as cluster.json has it", async () => {
    const config = await slurmConfig(cluster);
    expect(Number(config.get("MaxArraySize"))).toBe(slurm.maxArraySize);
    expect(config.get("ClusterName")).toBe(slurm.clusterName);
    expect(config.get("AccountingStorageType")).toBe("accounting_storage/slurmdbd");
  });
});
