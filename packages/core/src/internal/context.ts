import type { RequestId, Scheduler, Store } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type { ServerPool, SheepdogServer } from "@sheepdog/server";
import { serverPool } from "@sheepdog/server";
import type { ClusterLease } from "./defaults/cluster.js";
import { openLocalScheduler } from "./defaults/cluster.js";
import { dbfileKey, openDefaultStore } from "./defaults/store.js";
import type { Interruptible } from "./interrupt.js";
import { signalGuard, uninterruptible } from "./interrupt.js";
import { ResultChecker } from "./result-checker.js";
import { source } from "./source.js";

export type { ClusterLease };

/** What one operation of an instance works with: its store, and how to reach its cluster. */
export interface Context {
  runtime: Runtime;
  store: Store;
  /** The store's identity in the instance's server pool (the dbfile's path for SQLite). */
  storeKey: string;
  /** How a user names this store to `getErrors` in messages: `{ dbfile: "./x.sqlite" }`. */
  storeHint: string;
  /**
   * Kept with each request so that another process finds its cluster again: names only
   * (`{ host: "fear" }`), never a setting that steers SSH.
   */
  connection: Record<string, string>;
  /**
   * The address a map's server listens on: `127.0.0.1` when the tasks run on this machine,
   * so no other machine can reach it; every interface when they run on a cluster's nodes.
   */
  listenHost: string;
  /**
   * Opens the cluster; `scheduler` names the scheduler of a job already submitted (its
   * JobRef's), which the default cluster uses rather than asking the head node again.
   */
  openCluster(scheduler?: string): Promise<ClusterLease>;
}

/** A server kept for a `mapAsync` request, and what else ends with it. */
interface Held {
  server: SheepdogServer;
  checking: boolean;
  /** Ends what the request's workers need beside the server (a relay and its connection). */
  onRelease: (() => Promise<void>) | undefined;
}

/** Options of {@link Runtime.close}. */
export interface CloseOptions {
  /**
   * Leave the tasks of local jobs running (they outlive this process and report to a later
   * server, as `sheepdog map --async` needs). @default false: they are stopped
   */
  keepLocalTasks?: boolean;
}

/**
 * What one Sheepdog instance opens, and closes with `close()`: its servers (one per port), the
 * servers kept for `mapAsync` requests until their last report, the default stores and local
 * schedulers it built. Values given to the instance stay their owner's.
 */
export class Runtime {
  readonly interruptible: Interruptible;
  readonly #servers: ServerPool = serverPool();
  /** Checks that results decode for the servers: large ones on a worker thread. */
  readonly #checker = new ResultChecker();
  /** Servers kept open for requests of `mapAsync`, by store key and request. */
  readonly #held = new Map<string, Held>();
  readonly #stores = new Map<string, Promise<Store>>();
  readonly #localSchedulers = new Map<number, Promise<Scheduler>>();
  #closed = false;

  constructor(options: { handleSignals: boolean }) {
    this.interruptible = options.handleSignals ? signalGuard() : uninterruptible;
  }

  /** Throws `CLOSED` once the instance is closed. */
  checkOpen(): void {
    if (this.#closed) {
      throw new SheepdogError(
        "CLOSED",
        source,
        "This Sheepdog instance is closed. Create another with createSheepdog().",
      );
    }
  }

  /** The default store of a dbfile, opened once. */
  defaultStore(dbfile: string): Promise<Store> {
    this.checkOpen();
    const key = dbfileKey(dbfile);
    let store = this.#stores.get(key);
    if (!store) {
      store = openDefaultStore(key);
      this.#stores.set(key, store);
      store.catch(() => this.#stores.delete(key));
    }
    return store;
  }

  /**
   * The local scheduler of a concurrency, shared by the instance's local maps. Without one
   * (work on an existing request), the one the instance already runs, which knows its jobs.
   */
  localScheduler(concurrency: number | undefined): Promise<Scheduler> {
    const running = this.#localSchedulers.values().next();
    if (concurrency === undefined && !running.done) return running.value;
    const key = concurrency ?? 0;
    let scheduler = this.#localSchedulers.get(key);
    if (!scheduler) {
      scheduler = openLocalScheduler(concurrency);
      this.#localSchedulers.set(key, scheduler);
      scheduler.catch(() => this.#localSchedulers.delete(key));
    }
    return scheduler;
  }

  /**
   * A handle on the server for `port` serving the context's store, listening on `host`: close
   * it when done (the server stops with its last handle). A result that does not decode is stored as an error of
   * its task alone.
   */
  server(context: Context, port: number, host = context.listenHost): Promise<SheepdogServer> {
    this.checkOpen();
    return this.#servers.serverFor({
      port,
      host,
      store: context.store,
      storeKey: context.storeKey,
      checkResult: this.#checker.check,
    });
  }

  /**
   * Keeps `server` open until every task of `request` has a result or an error (then the
   * program can end by itself), or until the instance closes; `onRelease` runs then.
   */
  hold(
    context: Context,
    request: RequestId,
    server: SheepdogServer,
    onRelease?: () => Promise<void>,
  ): void {
    const key = `${context.storeKey}#${request}`;
    this.#held.set(key, { server, checking: false, onRelease });
    server.onReport((event) => {
      if (event.request === request) void this.release(context, request);
    });
    void this.release(context, request);
  }

  /** Closes the server held for `request` if every task has reported. */
  async release(context: Context, request: RequestId): Promise<void> {
    const key = `${context.storeKey}#${request}`;
    const held = this.#held.get(key);
    if (!held || held.checking) return;
    held.checking = true;
    try {
      const counts = await context.store.counts(request);
      if (counts.results + counts.errors < counts.tasks) return;
      this.#held.delete(key);
      await held.server.close();
      await held.onRelease?.();
    } catch {
      // A store that cannot count now is asked again at the next report.
    } finally {
      held.checking = false;
    }
  }

  /** Closes what the instance opened; a second close is harmless. */
  async close(options: CloseOptions = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // First, so that no server waits for a slow check to close: a result not yet checked is
    // answered 500, and its worker sends it again to the next server.
    const checker = this.#checker.close();
    const held = [...this.#held.values()];
    this.#held.clear();
    await Promise.allSettled(
      held.map(async ({ server, onRelease }) => {
        await server.close();
        await onRelease?.();
      }),
    );
    await this.#servers.close();
    await checker;
    const schedulers = [...this.#localSchedulers.values()];
    this.#localSchedulers.clear();
    // Kept tasks go to a process of their own (the local scheduler's detach): every one runs,
    // even if this process exits at once.
    await Promise.allSettled(
      schedulers.map(async (s) => {
        const scheduler = (await s) as Scheduler & { detach?: () => Promise<void> };
        return options.keepLocalTasks ? scheduler.detach?.() : scheduler.close?.();
      }),
    );
    const stores = [...this.#stores.values()];
    this.#stores.clear();
    await Promise.allSettled(stores.map(async (store) => (await store).close()));
  }
}
