import { memoryStore } from "@sheepdog/contracts/testing";
import { describe, expect, it } from "vitest";
import { countingStore } from "../__fixtures__/counting-store.js";
import { ArgsReadAhead } from "./args-read-ahead.js";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

async function requestOf(tasks: number, argBytes = 1) {
  const { store, calls } = countingStore(memoryStore());
  const args = Array.from({ length: tasks }, (_, i) =>
    new TextEncoder().encode(String(i).padStart(argBytes, "0")),
  );
  const { id } = await store.createRequest({ func: new Uint8Array(1), ns: new Uint8Array(), args });
  return { store, calls, id };
}

/** The argument's text, whether it came at once or as a promise. */
async function argOf(value: Uint8Array[] | Promise<Uint8Array[]>): Promise<string> {
  const [arg] = await value;
  return text(arg as Uint8Array);
}

describe("ArgsReadAhead", () => {
  it("reads small arguments a block at a time and serves the block's others at once", async () => {
    const { store, calls, id } = await requestOf(100);
    const ahead = new ArgsReadAhead(store);
    // The first read decides that the request's arguments are small.
    expect(await argOf(ahead.get(id, 0, 100))).toBe("0");
    const first = ahead.get(id, 1, 100);
    expect(first).toBeInstanceOf(Promise);
    expect(await argOf(first)).toBe("1");
    const next = ahead.get(id, 2, 100);
    expect(Array.isArray(next)).toBe(true);
    expect(await argOf(next)).toBe("2");
    expect(await argOf(ahead.get(id, 63, 100))).toBe("63");
    expect(calls.getArgs).toBe(2);
    // The next block: read once, the last one shorter.
    expect(await argOf(ahead.get(id, 99, 100))).toBe("99");
    expect(await argOf(ahead.get(id, 64, 100))).toBe("64");
    expect(calls.getArgs).toBe(3);
  });

  it("reads an argument served already again, at any time", async () => {
    const { store, calls, id } = await requestOf(10);
    const ahead = new ArgsReadAhead(store);
    await argOf(ahead.get(id, 0, 10));
    expect(await argOf(ahead.get(id, 5, 10))).toBe("5");
    const before = calls.getArgs ?? 0;
    expect(await argOf(ahead.get(id, 5, 10))).toBe("5");
    expect(calls.getArgs).toBe(before + 1);
  });

  it("reads large arguments one at a time", async () => {
    const { store, calls, id } = await requestOf(4, 2000);
    const ahead = new ArgsReadAhead(store);
    for (let i = 0; i < 4; i++) {
      const value = ahead.get(id, i, 4);
      expect(value).toBeInstanceOf(Promise);
      expect(Number(await argOf(value))).toBe(i);
    }
    expect(calls.getArgs).toBe(4);
  });

  it("reads a block again after a failed read", async () => {
    const { store, id } = await requestOf(10);
    let fail = true;
    const flaky = {
      ...store,
      getArgs: (...args: Parameters<typeof store.getArgs>) =>
        fail ? Promise.reject(new Error("disk on fire")) : store.getArgs(...args),
    };
    const ahead = new ArgsReadAhead(flaky);
    fail = false;
    await argOf(ahead.get(id, 0, 10));
    fail = true;
    await expect(argOf(ahead.get(id, 1, 10))).rejects.toThrow("disk on fire");
    fail = false;
    expect(await argOf(ahead.get(id, 1, 10))).toBe("1");
  });
});
