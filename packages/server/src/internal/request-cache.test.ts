import { memoryStore } from "@sheepdog/contracts/testing";
import { describe, expect, it } from "vitest";
import { countingStore } from "../__fixtures__/counting-store.js";
import { RequestCache } from "./request-cache.js";

const bytes = (text: string) => new TextEncoder().encode(text);

async function storeWith(requests: number) {
  const { store, calls } = countingStore(memoryStore());
  const ids = [];
  for (let i = 0; i < requests; i++) {
    const args = [bytes("a"), bytes("b"), bytes("c")];
    ids.push((await store.createRequest({ func: bytes("f"), ns: bytes(""), args })).id);
  }
  return { store, calls, ids };
}

describe("RequestCache", () => {
  it("has a request ready at once once it was read, and reads it once", async () => {
    const { store, calls, ids } = await storeWith(1);
    const id = ids[0] as number;
    const cache = new RequestCache(store);
    expect(cache.ready(id)).toBeUndefined();
    const loading = cache.get(id);
    expect(cache.ready(id)).toBeUndefined();
    const snapshot = await loading;
    expect(cache.ready(id)).toBe(snapshot);
    expect(await cache.get(id)).toBe(snapshot);
    expect(calls.getRequest).toBe(1);
  });

  it("reads a refreshed request again: the old snapshot is not ready meanwhile", async () => {
    const { store, calls, ids } = await storeWith(1);
    const id = ids[0] as number;
    const cache = new RequestCache(store);
    const before = await cache.get(id);
    await store.updateMeta(id, { retryTasks: [[0, 2]] });
    const refreshing = cache.refresh(id);
    expect(cache.ready(id)).toBeUndefined();
    const after = await refreshing;
    expect(after).not.toBe(before);
    expect(after.layout.retryTasks).toEqual([[0, 2]]);
    expect(cache.ready(id)).toBe(after);
    expect(calls.getRequest).toBe(2);
  });

  it("keeps no failure: an unknown request is read again on the next call", async () => {
    const { store, calls } = await storeWith(0);
    const cache = new RequestCache(store);
    await expect(cache.get(99)).rejects.toMatchObject({ code: "REQUEST_NOT_FOUND" });
    expect(cache.ready(99)).toBeUndefined();
    await expect(cache.get(99)).rejects.toMatchObject({ code: "REQUEST_NOT_FOUND" });
    expect(calls.getRequest).toBe(2);
  });

  it("evicts the least recently used request, counting a ready look-up as a use", async () => {
    const { store, calls, ids } = await storeWith(3);
    const [a, b, c] = ids as [number, number, number];
    const cache = new RequestCache(store, 2);
    await cache.get(a);
    await cache.get(b);
    // a is used again (at once), so b is now the oldest and goes when c comes in.
    expect(cache.ready(a)).toBeDefined();
    await cache.get(c);
    expect(cache.ready(a)).toBeDefined();
    expect(cache.ready(b)).toBeUndefined();
    expect(cache.ready(c)).toBeDefined();
    expect(calls.getRequest).toBe(3);
    await cache.get(b);
    expect(calls.getRequest).toBe(4);
    // c was used after a: a went.
    expect(cache.ready(a)).toBeUndefined();
    expect(cache.ready(c)).toBeDefined();
  });

  it("forgets everything on clear", async () => {
    const { store, ids } = await storeWith(1);
    const id = ids[0] as number;
    const cache = new RequestCache(store);
    await cache.get(id);
    cache.clear();
    expect(cache.ready(id)).toBeUndefined();
    await cache.get(id);
    expect(cache.ready(id)).toBeDefined();
  });
});
