/**
 * Conformance suites for Sheepdog's contracts. Any implementation, ours or yours, proves
 * itself in a few lines of vitest:
 *
 * ```ts
 * import { describeStoreContract } from "@sheepdog/contracts/testing";
 * describeStoreContract("my-store", () => myStore());
 * ```
 */
export {};
