import { realpathSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Cluster, Scheduler, SshSettings, Store } from "@sheepdog/contracts";
import { sshSettingKeys } from "@sheepdog/contracts";
import type { ResolvedConfig } from "../config.js";

/*
 * The one module of core that names backend packages: the defaults built from the
 * configuration when no store or cluster is given as a value. Each is imported on first use,
 * so a program that passes its own store never loads better-sqlite3, and one that runs
 * locally never loads ssh2.
 */

/** A cluster opened for one piece of work; `release` ends what was opened for it. */
export interface ClusterLease {
  cluster: Cluster;
  release(): Promise<void>;
}

/** The dbfile's absolute path, resolving links in its directory so two spellings share a store. */
export function dbfileKey(dbfile: string): string {
  const absolute = resolve(dbfile);
  try {
    return join(realpathSync(dirname(absolute)), basename(absolute));
  } catch {
    return absolute;
  }
}

/** The default store: the SQLite file `dbfile` (by its {@link dbfileKey}). */
export async function openDefaultStore(dbfileKey: string): Promise<Store> {
  const { sqliteStore } = await import("@sheepdog/store-sqlite");
  return sqliteStore({ dbfile: dbfileKey });
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
