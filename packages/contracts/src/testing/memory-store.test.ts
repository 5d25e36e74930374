import { describe, expect, it } from "vitest";
import type { MemoryStoreData } from "./memory-store.js";
import { memoryStore } from "./memory-store.js";
import type { StoreContractContext } from "./store-contract.js";
import { describeStoreContract } from "./store-contract.js";

// Reopening a memory store means opening a new one on the same data: keep it per test context.
const data = new WeakMap<StoreContractContext, MemoryStoreData>();
describeStoreContract("memory", (ctx) => {
  const store = memoryStore({ data: data.get(ctx) });
  data.set(ctx, store.data);
  return store;
});

describe("memoryStore", () => {
  it("supports await using", async () => {
    const outer = memoryStore();
    {
      await using store = memoryStore({ data: outer.data });
      await store.createRequest({ func: new Uint8Array(), ns: new Uint8Array(), args: [] });
    }
    expect(await outer.listRequests()).toHaveLength(1);
  });
});
