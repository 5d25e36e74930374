import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach } from "vitest";
import type { RequestId, Store } from "../../store.js";
import { utf8 } from "./bytes.js";
import type { StoreContractContext, StoreFactory } from "./types.js";

/** What the groups of the store suite share: stores on the current test's data. */
export interface StoreSuite {
  /**
   * Opens a store on the current test's data (a second call opens the same data again). The
   * suite closes it after the test.
   */
  open(): Promise<Store>;
  /** Creates a request of `tasks` arguments, "arg 0", "arg 1", …, and returns its id. */
  create(store: Store, tasks: number, meta?: Record<string, unknown>): Promise<RequestId>;
}

/**
 * Registers the hooks that give each test a fresh context (an empty directory, deleted after
 * the test) and close the stores it opened. Call it inside the suite's `describe`.
 */
export function storeSuite(factory: StoreFactory): StoreSuite {
  let ctx: StoreContractContext;
  let opened: Store[] = [];

  async function open(): Promise<Store> {
    const store = await factory(ctx);
    opened.push(store);
    return store;
  }

  beforeEach(async () => {
    ctx = Object.freeze({ dir: await mkdtemp(join(tmpdir(), "sheepdog-store-contract-")) });
    opened = [];
  });

  afterEach(async () => {
    for (const store of opened) await store.close();
    await rm(ctx.dir, { recursive: true, force: true });
  });

  return { open, create: createRequest };
}

async function createRequest(
  store: Store,
  tasks: number,
  meta?: Record<string, unknown>,
): Promise<RequestId> {
  const args = Array.from({ length: tasks }, (_, i) => utf8(`arg ${i}`));
  const created = await store.createRequest({
    func: utf8("func"),
    ns: utf8("ns"),
    args,
    ...(meta ? { meta } : {}),
  });
  return created.id;
}
