import { realpathSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Remote, Scheduler, Store } from "@sheepdog/contracts";
import { connect } from "@sheepdog/deploy-ssh";
import { gridEngine } from "@sheepdog/gridengine";
import { localRemote, localScheduler } from "@sheepdog/local";
import type { SheepdogServer } from "@sheepdog/server";
import { closeServers, serverFor } from "@sheepdog/server";
import { sqliteStore } from "@sheepdog/store-sqlite";
import type { ResolvedConfig } from "../config.js";
import { undecodableReason } from "./result-check.js";

/**
 * What one process shares between its maps: one store per dbfile, one server per port (the
 * seed's get_server), one local scheduler. SSH connections are per map.
 */
const stores = new Map<string, Promise<Store>>();
const localSchedulers = new Map<number, Scheduler>();

/** The dbfile's absolute path, resolving links in its directory so two spellings share a store. */
export function dbfileKey(dbfile: string): string {
  const absolute = resolve(dbfile);
  try {
    return join(realpathSync(dirname(absolute)), basename(absolute));
  } catch {
    return absolute;
  }
}

export function storeFor(dbfile: string): Promise<Store> {
  const key = dbfileKey(dbfile);
  let store = stores.get(key);
  if (!store) {
    store = Promise.resolve().then(() => sqliteStore({ database: key }));
    stores.set(key, store);
    store.catch(() => stores.delete(key));
  }
  return store;
}

/**
 * A handle on the server for this config's port and dbfile: close it when the map no longer
 * needs the server (it stops with its last handle). A result that does not decode is stored
 * as an error of its task alone (the server's `checkResult`).
 */
export function serverForConfig(config: ResolvedConfig, store: Store): Promise<SheepdogServer> {
  return serverFor({
    port: config.port,
    store,
    storeKey: dbfileKey(config.dbfile),
    checkResult: undecodableReason,
  });
}

export interface Cluster {
  scheduler: Scheduler;
  /** The head node (this machine with `host: "local"`). */
  remote: Remote;
  /** Ends what this map opened (the SSH connection); the shared local scheduler stays. */
  release(): Promise<void>;
}

export async function clusterFor(config: ResolvedConfig): Promise<Cluster> {
  if (config.host === "local") {
    const concurrency = config.concurrency ?? 0;
    let scheduler = localSchedulers.get(concurrency);
    if (!scheduler) {
      scheduler = localScheduler(concurrency > 0 ? { concurrency } : {});
      localSchedulers.set(concurrency, scheduler);
    }
    const remote = localRemote();
    return { scheduler, remote, release: () => remote.close() };
  }
  const remote: Remote = await connect({
    host: config.host,
    ...(config.sshPort !== undefined && { port: config.sshPort }),
    ...(config.sshUser !== undefined && { user: config.sshUser }),
    ...(config.sshKeyfile !== undefined && { keyfile: config.sshKeyfile }),
    ...(config.sshKnownHosts !== undefined && { knownHostsPath: config.sshKnownHosts }),
    ...(config.sshConfig !== undefined && { sshConfigPath: config.sshConfig }),
  });
  const scheduler = gridEngine(remote);
  return {
    scheduler,
    remote,
    release: async () => {
      await scheduler.close?.();
      await remote.close();
    },
  };
}

/** Options of {@link shutdown}. */
export interface ShutdownOptions {
  /**
   * Leave the tasks of `host: "local"` jobs running (they outlive this process and report to
   * a later server, as `sheepdog map --async` needs). @default false: they are stopped
   */
  keepLocalTasks?: boolean;
}

/**
 * Closes every server, store and local scheduler this process opened. Maps still running
 * lose their server; call it when your program is done with Sheepdog (tests, servers).
 */
export async function shutdown(options: ShutdownOptions = {}): Promise<void> {
  const closing: Promise<unknown>[] = [closeServers()];
  if (!options.keepLocalTasks) {
    for (const scheduler of localSchedulers.values()) {
      closing.push(scheduler.close?.() ?? Promise.resolve());
    }
  }
  localSchedulers.clear();
  await Promise.allSettled(closing);
  const open = [...stores.values()];
  stores.clear();
  await Promise.allSettled(open.map(async (store) => (await store).close()));
}
