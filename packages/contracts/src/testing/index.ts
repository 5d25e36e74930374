/**
 * Conformance suites for Sheepdog's contracts, and an in-memory store. Any implementation,
 * ours or yours, proves itself in a few lines of vitest:
 *
 * ```ts
 * import { join } from "node:path";
 * import { describeStoreContract } from "@sheepdog/contracts/testing";
 * describeStoreContract("my-store", (ctx) => myStore({ file: join(ctx.dir, "data") }));
 * ```
 */
export type {
  MemoryRequest,
  MemoryStore,
  MemoryStoreData,
  MemoryStoreOptions,
} from "./memory-store.js";
export { memoryStore } from "./memory-store.js";
export type { RemoteContractOptions, RemoteFactory } from "./remote-contract.js";
export { describeRemoteContract } from "./remote-contract.js";
export type { SchedulerContractOptions, SchedulerFactory } from "./scheduler-contract.js";
export { describeSchedulerContract } from "./scheduler-contract.js";
export type {
  StoreContractContext,
  StoreContractOptions,
  StoreFactory,
} from "./store-contract.js";
export { describeStoreContract } from "./store-contract.js";
