import { describe } from "vitest";
import type { Store } from "../store.js";
import { describeArguments } from "./store-contract/arguments.js";
import { describeFacts } from "./store-contract/facts.js";
import { describeLifecycle } from "./store-contract/lifecycle.js";
import { describeProvisional } from "./store-contract/provisional.js";
import { describeReports } from "./store-contract/reports.js";
import { describeRequests } from "./store-contract/requests.js";
import { describeScale } from "./store-contract/scale.js";
import { storeSuite } from "./store-contract/suite.js";
import type { StoreFactory } from "./store-contract/types.js";

export type { StoreContractContext, StoreFactory } from "./store-contract/types.js";

/** Options of {@link describeStoreContract}. */
export interface StoreContractOptions {
  /**
   * How many tasks the big request has (and, up to 100,000, how many report facts at once).
   * @default 1_000_000
   */
  manyTasks?: number;
  /** The size of the large argument and result, in bytes. @default 64 MiB */
  largeValueBytes?: number;
  /** Timeout of the heavy tests (many tasks, large values), in milliseconds. @default 120_000 */
  heavyTimeout?: number;
  /**
   * Whether two stores can be open on the same context at once (two processes sharing one
   * database file). When true, the suite races two stores against each other.
   * @default true
   */
  sharedOpen?: boolean;
}

/**
 * Registers a vitest suite that checks a {@link Store} against the contract: the request
 * lifecycle, argument order, first-report-wins under concurrency, provisional errors that a
 * real report replaces, counts, results and errors,
 * listing, errors for unknown requests and tasks and after close, values up to 64 MiB, a
 * request of 1,000,000 tasks, and data that survives close and reopen. Optional methods
 * (`putReports`, `getResultRange`, `resetTasks`, and `getTaskFacts` with `getLogs`: the facts
 * and logs that reports bring, for 100,000 tasks at once) are checked when the store has them.
 *
 * @example
 * ```ts
 * import { join } from "node:path";
 * import { describeStoreContract } from "@sheepdog/contracts/testing";
 * import { sqliteStore } from "@sheepdog/store-sqlite";
 *
 * describeStoreContract("sqlite", (ctx) => sqliteStore({ dbfile: join(ctx.dir, "s.sqlite") }));
 * ```
 */
export function describeStoreContract(
  name: string,
  factory: StoreFactory,
  options: StoreContractOptions = {},
): void {
  const manyTasks = options.manyTasks ?? 1_000_000;
  const largeBytes = options.largeValueBytes ?? 64 * 1024 * 1024;
  const heavyTimeout = options.heavyTimeout ?? 120_000;
  const sharedOpen = options.sharedOpen ?? true;

  describe(`Store contract: ${name}`, () => {
    const suite = storeSuite(factory);
    describeRequests(suite);
    describeArguments(suite);
    describeReports(suite);
    describeProvisional(suite);
    describeLifecycle(suite, sharedOpen);
    describeScale(suite, { manyTasks, largeBytes, heavyTimeout });
    describeFacts(suite, { tasks: Math.min(manyTasks, 100_000), heavyTimeout });
  });
}
