import type { ClusterLease, Context } from "./context.js";

/**
 * One cluster lease for many requests (the windows of a stream): they submit over one
 * connection and one scheduler, which asks the cluster what it reads ahead once, not once per
 * request. Opened by the first request that asks; released by {@link release}, at the end.
 */
export class SharedLease {
  /** The context to submit the requests in: its `openCluster` hands out this lease. */
  readonly context: Context;
  readonly #base: Context;
  #lease: Promise<ClusterLease> | undefined;
  #slots: Promise<number | undefined> | undefined;

  constructor(context: Context) {
    this.#base = context;
    this.context = { ...context, openCluster: (scheduler) => this.#open(scheduler) };
  }

  /** The cluster's slots (see `Scheduler.slots`), asked once; undefined when it cannot tell. */
  slots(): Promise<number | undefined> {
    this.#slots ??= this.#open()
      .then((lease) => lease.cluster.scheduler.slots?.())
      .catch(() => undefined);
    return this.#slots;
  }

  /** Releases the lease, once no request uses it any more. */
  async release(): Promise<void> {
    const lease = await this.#lease?.catch(() => undefined);
    this.#lease = undefined;
    await lease?.release();
  }

  async #open(scheduler?: string): Promise<ClusterLease> {
    if (!this.#lease) {
      const opening = this.#base.openCluster(scheduler);
      this.#lease = opening;
      // A cluster that could not be opened is tried again by the next request.
      opening.catch(() => {
        if (this.#lease === opening) this.#lease = undefined;
      });
    }
    const { cluster } = await this.#lease;
    return { cluster, release: async () => {} };
  }
}
