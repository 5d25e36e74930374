import type { RequestId, Store, TaskLayout } from "@sheepdog/contracts";
import { chunkCount, taskRange } from "@sheepdog/contracts";

/** Requests whose claims are kept at once; the oldest is forgotten first (its meta has them). */
const MAX_REQUESTS = 1024;
/**
 * The most chunk tasks one claim looks at whose first argument has a report already (their
 * array task ran while another server served the request): past that, it gives none.
 */
const MAX_REPORTED_LOOKS = 64;

/** What this server knows of one request's chunk tasks. */
interface RequestClaims {
  /** Bit `t` is set once chunk task `t` may no longer be claimed. */
  taken: Uint8Array;
  /** The claimed tasks: claimed task -> the array task that holds it. */
  holders: Map<number, number>;
  /** Tasks a claim has taken and is checking: their own array task may still take them. */
  pending: Set<number>;
  /** No chunk task below this one is free. */
  lowestFree: number;
  /** Claims under way: looking for a free task, or writing the meta. */
  claiming: number;
  chunks: number;
  /** The last write of the claims to the meta: the next one waits for it. */
  written: Promise<unknown>;
}

/**
 * Which chunk tasks of each request an array task has taken (by fetching its own task, or by
 * claiming another's, see `claims` in `wire.ts` of `@sheepdog/contracts`), for requests that let
 * tasks claim. A claim is written to the request's meta before it is answered, so that a client
 * in another process counts the claimed task's arguments as its holder's.
 */
export class TaskClaims {
  readonly #store: Store;
  readonly #requests = new Map<RequestId, RequestClaims>();

  constructor(store: Store) {
    this.#store = store;
  }

  /**
   * Array task `task` fetches its own task: the array task that claimed it, when another did;
   * else undefined, and it can no longer be claimed.
   */
  fetchOwn(id: RequestId, layout: TaskLayout, task: number): number | undefined {
    const claims = this.#of(id, layout);
    if (claims === undefined || task > claims.chunks) return undefined;
    const holder = claims.holders.get(task);
    if (holder !== undefined) return holder;
    take(claims, task);
    claims.pending.delete(task);
    return undefined;
  }

  /**
   * Gives array task `holder` the lowest chunk task that no array task has taken and whose first
   * argument has no report, once the claim is in the request's meta; undefined when there is
   * none, when the request does not let tasks claim, or when the meta cannot be written.
   */
  async claim(id: RequestId, layout: TaskLayout, holder: number): Promise<number | undefined> {
    const claims = this.#of(id, layout);
    if (claims === undefined || holder < 1 || holder > claims.chunks) return undefined;
    claims.claiming++;
    try {
      const task = await this.#freeTask(id, layout, claims);
      if (task === undefined) return undefined;
      claims.holders.set(task, holder);
      try {
        await this.#write(id, claims);
      } catch {
        // Free again: claimed later, or fetched by its own array task.
        claims.holders.delete(task);
        untake(claims, task);
        return undefined;
      }
      return task;
    } finally {
      claims.claiming--;
    }
  }

  /**
   * The array tasks that can find no work: once every chunk task is taken and no claim is under
   * way, those whose own task another array task claimed and that hold no claim themselves (one
   * that started, met the claim and claimed another is running it). Empty until then, and for a
   * request that does not let tasks claim.
   */
  idleTasks(id: RequestId, layout: TaskLayout): number[] {
    const claims = this.#of(id, layout);
    if (claims === undefined || claims.claiming > 0 || lowestFree(claims) <= claims.chunks) {
      return [];
    }
    const holding = new Set(claims.holders.values());
    return [...claims.holders.keys()].filter((task) => !holding.has(task)).sort((a, b) => a - b);
  }

  /**
   * Closes chunk task `task` to claims (its array task ended) and returns the claims this
   * server knows (claimed task -> holder); undefined when it keeps none for the request.
   */
  settle(id: RequestId, layout: TaskLayout, task: number): ReadonlyMap<number, number> | undefined {
    const claims = this.#of(id, layout);
    if (claims === undefined) return undefined;
    if (task <= claims.chunks) {
      take(claims, task);
      // A claim still checking it gives it to nobody: the client is recording its end.
      claims.pending.delete(task);
    }
    return new Map(claims.holders);
  }

  clear(): void {
    this.#requests.clear();
  }

  /** The request's claims, begun from its meta's; undefined when it does not let tasks claim. */
  #of(id: RequestId, layout: TaskLayout): RequestClaims | undefined {
    const known = this.#requests.get(id);
    if (known !== undefined || layout.claims === undefined) return known;
    const chunks = chunkCount(layout);
    const claims: RequestClaims = {
      taken: new Uint8Array((chunks >> 3) + 1),
      holders: new Map(layout.claims),
      pending: new Set(),
      lowestFree: 1,
      claiming: 0,
      chunks,
      written: Promise.resolve(),
    };
    for (const task of claims.holders.keys()) take(claims, task);
    this.#requests.set(id, claims);
    if (this.#requests.size > MAX_REQUESTS) {
      this.#requests.delete(this.#requests.keys().next().value as RequestId);
    }
    return claims;
  }

  /**
   * The lowest chunk task not taken, now taken; one whose first argument was reported is
   * passed over (taken too), up to {@link MAX_REPORTED_LOOKS} of them.
   */
  async #freeTask(
    id: RequestId,
    layout: TaskLayout,
    claims: RequestClaims,
  ): Promise<number | undefined> {
    for (let looks = 0; looks < MAX_REPORTED_LOOKS; looks++) {
      const task = lowestFree(claims);
      if (task > claims.chunks) return undefined;
      take(claims, task);
      claims.pending.add(task);
      const { first } = taskRange(layout, task) as { first: number };
      let unreported: number[];
      try {
        unreported = await this.#store.unreported(id, first, 1);
      } finally {
        // Its own array task fetched it meanwhile (and runs it) when it is no longer pending.
        if (!claims.pending.delete(task)) unreported = [];
      }
      if (unreported.length === 1) return task;
    }
    return undefined;
  }

  /** Writes the claims to the meta after the write before it. */
  #write(id: RequestId, claims: RequestClaims): Promise<unknown> {
    const snapshot = Object.fromEntries(claims.holders);
    // `written` never rejects: a failed write is its own claim's to undo.
    const write = claims.written.then(() => this.#store.updateMeta(id, { claims: snapshot }));
    claims.written = write.catch(() => undefined);
    return write;
  }
}

/** The lowest chunk task not taken (one past the last when none is free). */
function lowestFree(claims: RequestClaims): number {
  while (claims.lowestFree <= claims.chunks && isTaken(claims, claims.lowestFree)) {
    claims.lowestFree++;
  }
  return claims.lowestFree;
}

function isTaken(claims: RequestClaims, task: number): boolean {
  return ((claims.taken[task >> 3] as number) & (1 << (task & 7))) !== 0;
}

function take(claims: RequestClaims, task: number): void {
  claims.taken[task >> 3] = (claims.taken[task >> 3] as number) | (1 << (task & 7));
}

function untake(claims: RequestClaims, task: number): void {
  claims.taken[task >> 3] = (claims.taken[task >> 3] as number) & ~(1 << (task & 7));
  claims.lowestFree = Math.min(claims.lowestFree, task);
}
