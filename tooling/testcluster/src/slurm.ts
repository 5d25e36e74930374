import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { TestCluster } from "./index.js";
import { sshArgs } from "./index.js";

const run = promisify(execFile);

/**
 * The single-node Slurm that `tooling/testcluster/slurm-up` starts beside GridEngine, reached
 * over the same sshd by the same login user. Facts read back from the running daemons.
 */
export interface SlurmFacts {
  /** Slurm's ClusterName, also the cluster's name in accounting (`sacctmgr show cluster`). */
  clusterName: string;
  /** The partition jobs run in, the default one (`debug`, no time limit). */
  partition: string;
  /** The login user's default account in accounting (its association). */
  account: string;
  /** The one node: this machine's hostname, at 127.0.0.1. */
  nodeName: string;
  /** The CPUs the node offers whatever its real cores (GridEngine has as many slots). */
  cpus: number;
  /** The node's memory in MB (the machine's): a `--mem` up to it can be scheduled. */
  memoryMb: number;
  /** The memory a job that asks for none gets per CPU (`DefMemPerCPU`), so every CPU can run a job. */
  defaultMemoryPerCpuMb: number;
  /**
   * `MaxArraySize` from `scontrol show config`: an array's task indices must be below it
   * (`--array=1-1000` at most with the default 1001).
   */
  maxArraySize: number;
  /** How long a finished job stays visible to `scontrol show job` and `squeue` (`MinJobAge`). */
  minJobAgeSeconds: number;
  /**
   * How often each task's memory is sampled (`JobAcctGatherFrequency`): sacct's MaxRSS for a
   * task that ran at least this long, and the memory limit. A step past its memory (`--mem`, else
   * `defaultMemoryPerCpuMb` per CPU) is killed at the next sample (`OverMemoryKill`, no cgroups
   * here): sacct then shows the job `FAILED 0:9` and its batch step `CANCELLED by 0` with MaxRSS
   * above ReqMem, never `OUT_OF_MEMORY`.
   */
  gatherSeconds: number;
  /** Whether `sacct` answers: slurmdbd with a MariaDB database (always true here). */
  accounting: boolean;
  /** Slurm's version, e.g. `22.05.8`. */
  version: string;
  /** The slurm.conf the daemons read (written by slurm-up). */
  confPath: string;
  /** The daemons' logs, readable by root. */
  logs: { slurmctld: string; slurmd: string; slurmdbd: string };
}

/** The Slurm of the test cluster, or an error saying how to start it. */
export function slurmOf(cluster: TestCluster): SlurmFacts {
  if (cluster.slurm) return cluster.slurm;
  throw new Error(
    "The test cluster has no Slurm: cluster.json says slurm is null. Run `sudo bash tooling/testcluster/up` (it runs slurm-up).",
  );
}

/**
 * Runs a shell command on the head node as the cluster's login user, over real SSH with the
 * cluster's key and known_hosts. Rejects when the command exits non-zero (the error carries its
 * `stdout`, `stderr` and `code`) or outlasts `timeoutMs`.
 */
export async function runAsLoginUser(
  cluster: TestCluster,
  command: string,
  timeoutMs = 60_000,
): Promise<{ stdout: string; stderr: string }> {
  return run("ssh", [...sshArgs(cluster), command], { timeout: timeoutMs });
}

/** One record of `sacct -P -n --format=JobID,State,ExitCode`: a job, an array task or a step. */
export interface SacctRecord {
  /** `123`, `123_4` (array task 4), `123_4.batch` (its batch step). */
  jobId: string;
  /** `COMPLETED`, `FAILED`, `CANCELLED by 1001`, `TIMEOUT`, `RUNNING`, ... */
  state: string;
  /** `exit code:signal`, e.g. `0:0`, `0:9` (killed by SIGKILL), `3:0`. */
  exitCode: string;
}

/** The accounting records of a job (all its array tasks and their steps) as sacct has them now. */
export async function sacctRecords(cluster: TestCluster, jobId: string): Promise<SacctRecord[]> {
  const { stdout } = await runAsLoginUser(
    cluster,
    `sacct -j ${Number.parseInt(jobId, 10)} -P -n --format=JobID,State,ExitCode`,
  );
  return stdout
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const [id = "", state = "", exitCode = ""] = line.split("|");
      return { jobId: id, state, exitCode };
    });
}

/**
 * Polls sacct (every 500 ms) until `done` holds for a job's records: a task can leave the queue
 * a moment before slurmdbd has its end, and an array's first task can show as the bare job id
 * (`123` rather than `123_1`) for a second or two. Throws with the last records after `timeoutMs`.
 */
export async function waitForSacct(
  cluster: TestCluster,
  jobId: string,
  done: (records: SacctRecord[]) => boolean,
  timeoutMs = 20_000,
): Promise<SacctRecord[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const records = await sacctRecords(cluster, jobId);
    if (done(records)) return records;
    if (Date.now() > deadline) {
      throw new Error(
        `sacct did not show job ${jobId} as expected within ${timeoutMs} ms; last records: ${JSON.stringify(records)}. See the slurmdbd log.`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Slurm's running configuration, as `scontrol show config` prints it (name to value). */
export async function slurmConfig(cluster: TestCluster): Promise<Map<string, string>> {
  const { stdout } = await runAsLoginUser(cluster, "scontrol show config");
  const config = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const match = /^(\w+)\s+=\s?(.*)$/.exec(line);
    if (match?.[1]) config.set(match[1], (match[2] ?? "").trim());
  }
  return config;
}
