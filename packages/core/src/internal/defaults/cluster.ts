import type { Cluster, Scheduler, SshSettings } from "@sheepdog/contracts";
import { sshSettingKeys } from "@sheepdog/contracts";
import type { ResolvedConfig } from "../../config.js";

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
 * processes) and a local remote; otherwise an SSH connection to `host` and GridEngine over it,
 * both closed on release.
 */
export async function openDefaultCluster(
  config: ResolvedConfig,
  localScheduler: () => Promise<Scheduler>,
): Promise<ClusterLease> {
  if (defaultRunsHere(config)) {
    const [{ localRemote }, scheduler] = await Promise.all([
      import("@sheepdog/local"),
      localScheduler(),
    ]);
    const remote = localRemote();
    return { cluster: { scheduler, remote }, release: () => remote.close() };
  }
  const [{ connect }, { gridEngine }] = await Promise.all([
    import("@sheepdog/deploy-ssh"),
    import("@sheepdog/gridengine"),
  ]);
  const login: SshSettings = Object.fromEntries(
    sshSettingKeys.filter((key) => config[key] !== undefined).map((key) => [key, config[key]]),
  );
  const remote = await connect({ host: config.host, ...login });
  const scheduler = gridEngine(remote);
  return {
    cluster: { scheduler, remote },
    release: async () => {
      await scheduler.close?.();
      await remote.close();
    },
  };
}
