import type { Store } from "../../store.js";

/**
 * What the suite hands the factory: a place for one test's data. Calling the factory again
 * with the same context (the same object) MUST open the same data — the suite closes a store
 * and opens another on its context to check that nothing is lost.
 */
export interface StoreContractContext {
  /** A fresh, empty directory for this test, deleted after it. */
  readonly dir: string;
}

/**
 * Opens a store on the data of `ctx`. A file-based store puts its file in `ctx.dir`; a store
 * that keeps its data elsewhere can key it by the context object (a `WeakMap`).
 */
export type StoreFactory = (ctx: StoreContractContext) => Store | Promise<Store>;
