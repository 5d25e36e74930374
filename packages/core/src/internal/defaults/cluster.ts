import type { Cluster, Remote, Scheduler, SshSettings } from "@sheepdog/contracts";
import { SheepdogError, sshSettingKeys } from "@sheepdog/contracts";
import type { ResolvedConfig, SchedulerChoice } from "../../config.js";
import { source } from "../source.js";

/* With defaults/store.ts, the only modules of core that name backend packages (see there). */

/** A cluster opened for one piece of work; `release` ends what was opened for it. */
export interface ClusterLease {
  cluster: Cluster;
  release(): Promise<void>;
}

/** The local scheduler for a concurrency, shared by an instance's local maps. */
export async function openLocalScheduler(concurrency: number | undefined): Promise<Scheduler> {
  const { localScheduler } = await import("@sheepdog/local");
  return localScheduler(concurrency !== undefined ? { concurrency } : {});
}

/** Whether the default cluster of a configuration runs its tasks on this machine. */
export function defaultRunsHere(config: ResolvedConfig): boolean {
  return config.host === "local";
}

/**
 * The default cluster of a configuration: with `host: "local"`, `scheduler` (this machine's
 * processes) and a local remote; otherwise an SSH connection to `host` and the scheduler the
 * configuration chooses over it (`scheduler`; with `"auto"`, `known`, the scheduler of a job
 * already submitted, else the one the head node has), both closed on release.
 */
export async function openDefaultCluster(
  config: ResolvedConfig,
  localScheduler: () => Promise<Scheduler>,
  known?: string,
): Promise<ClusterLease> {
  if (defaultRunsHere(config)) {
    const [{ localRemote }, scheduler] = await Promise.all([
      import("@sheepdog/local"),
      localScheduler(),
    ]);
    const remote = localRemote();
    return { cluster: { scheduler, remote }, release: () => remote.close() };
  }
  const remote = await openDefaultRemote(config);
  try {
    const choice =
      config.scheduler === "auto" && (known === "slurm" || known === "gridengine")
        ? known
        : config.scheduler;
    const scheduler = await openScheduler(remote, choice);
    return {
      cluster: { scheduler, remote },
      release: async () => {
        await scheduler.close?.();
        await remote.close();
      },
    };
  } catch (error) {
    await remote.close();
    throw error;
  }
}

/** An SSH connection to the configuration's `host`, with its SSH settings. */
export async function openDefaultRemote(config: ResolvedConfig): Promise<Remote> {
  const { connect } = await import("@sheepdog/deploy-ssh");
  const login: SshSettings = Object.fromEntries(
    sshSettingKeys.filter((key) => config[key] !== undefined).map((key) => [key, config[key]]),
  );
  return connect({ host: config.host, ...login });
}

/** The scheduler of `choice` over `remote`; `"auto"` asks the head node ({@link detectScheduler}). */
export async function openScheduler(remote: Remote, choice: SchedulerChoice): Promise<Scheduler> {
  const name = choice === "auto" ? await detectScheduler(remote) : choice;
  if (name === "slurm") return (await import("@sheepdog/slurm")).slurm(remote);
  return (await import("@sheepdog/gridengine")).gridEngine(remote);
}

/** What the head node of each connection has, asked once per connection. */
const detected = new WeakMap<Remote, Promise<"gridengine" | "slurm">>();

/**
 * Which scheduler the head node has, from whether its login shell finds `sbatch` and `qsub`
 * (asked once per connection). Neither, or both, is an error that says what to set.
 */
export function detectScheduler(remote: Remote): Promise<"gridengine" | "slurm"> {
  let answer = detected.get(remote);
  if (!answer) {
    answer = askScheduler(remote);
    detected.set(remote, answer);
    answer.catch(() => detected.delete(remote));
  }
  return answer;
}

async function askScheduler(remote: Remote): Promise<"gridengine" | "slurm"> {
  const result = await remote.exec(
    "for c in sbatch qsub; do command -v $c >/dev/null 2>&1 && echo $c; done; true",
    { timeoutMs: 60_000 },
  );
  const found = new Set(result.stdout.split("\n").map((line) => line.trim()));
  const slurm = found.has("sbatch");
  const gridEngine = found.has("qsub");
  if (slurm && !gridEngine) return "slurm";
  if (gridEngine && !slurm) return "gridengine";
  throw new SheepdogError(
    "CONFIG_INVALID",
    source,
    slurm
      ? `${remote.name} has both Slurm (sbatch) and GridEngine (qsub). Choose one with scheduler: "slurm" or scheduler: "gridengine" (SHEEPDOG_SCHEDULER, --scheduler).`
      : `${remote.name} has neither sbatch (Slurm) nor qsub (GridEngine) on the PATH of a non-interactive login. Check that host is the cluster's head node, and that its scheduler's commands are on the PATH that "ssh ${remote.name} command -v sbatch qsub" sees; then set scheduler: "slurm" or "gridengine".`,
  );
}
