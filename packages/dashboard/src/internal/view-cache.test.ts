import { describe, expect, it } from "vitest";
import type { ViewStamp } from "./view-cache.js";
import { ViewCache } from "./view-cache.js";

/** A cache on a clock the test moves, and a read that counts its calls and ends when told. */
function setUp(options: { exact?: boolean } = {}) {
  let now = 0;
  const cache = new ViewCache<string>({
    kept: 2,
    clock: () => now,
    ...(options.exact ? { exact: true, minReuseMs: 0, reuseFactor: 5 } : {}),
  });
  const reads: { stamp: string; finish: (took?: number) => void }[] = [];
  const read = (stamp: ViewStamp) => (): Promise<string> =>
    new Promise((resolve) => {
      reads.push({
        stamp: stamp.key,
        finish: (took = 0) => {
          now += took;
          resolve(`view of ${stamp.key}`);
        },
      });
    });
  const get = (key: string, complete = false, meta = "m") => {
    const stamp = { key, meta, complete };
    return cache.get("r1", stamp, read(stamp));
  };
  return { cache, reads, get, tick: (ms: number) => (now += ms), read };
}

const settled = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("ViewCache", () => {
  it("never reads one request's view twice at once: a read under way is shared", async () => {
    const { reads, get } = setUp();
    const first = get("1/0");
    const second = get("2/0");
    const third = get("3/0");
    expect(reads).toHaveLength(1);
    reads[0]?.finish();
    expect(await Promise.all([first, second, third])).toEqual([
      "view of 1/0",
      "view of 1/0",
      "view of 1/0",
    ]);
  });

  it("reuses a view younger than 2 s while only the counts changed, then reads again", async () => {
    const { reads, get, tick } = setUp();
    const first = get("1/0");
    reads[0]?.finish(10);
    await first;
    tick(1_500);
    expect(await get("5/0")).toBe("view of 1/0");
    expect(reads).toHaveLength(1);
    tick(600);
    const fresh = get("9/0");
    expect(reads).toHaveLength(2);
    reads[1]?.finish();
    expect(await fresh).toBe("view of 9/0");
  });

  it("reuses a slow view for 20 times as long as its read took", async () => {
    const { reads, get, tick } = setUp();
    const first = get("1/0");
    reads[0]?.finish(1_000);
    await first;
    tick(18_000); // 19 s after its read began
    expect(await get("7/0")).toBe("view of 1/0");
    expect(reads).toHaveLength(1);
    tick(1_000);
    void get("8/0");
    expect(reads).toHaveLength(2);
  });

  it("reads a finished request's view once more for its final counts, after a read under way", async () => {
    const { reads, get } = setUp();
    const first = get("1/0");
    const last = get("10/0", true);
    expect(reads).toHaveLength(1);
    reads[0]?.finish();
    await first;
    await settled();
    expect(reads).toHaveLength(2);
    expect(reads[1]?.stamp).toBe("10/0");
    reads[1]?.finish();
    expect(await last).toBe("view of 10/0");
    expect(await get("10/0", true)).toBe("view of 10/0");
    expect(reads).toHaveLength(2);
  });

  it("does not reuse a young view when the request finished or its meta changed", async () => {
    const { reads, get } = setUp();
    const first = get("1/0");
    reads[0]?.finish();
    await first;
    void get("2/0", false, "cancelled");
    expect(reads).toHaveLength(2);
    reads[1]?.finish();
    await settled();
    void get("10/0", true, "cancelled");
    expect(reads).toHaveLength(3);
  });

  it("exact: answers a read under way only for its own counts; other counts wait for a read after it", async () => {
    const { reads, get } = setUp({ exact: true });
    const first = get("1");
    const same = get("1");
    const more = get("2");
    expect(reads).toHaveLength(1);
    reads[0]?.finish();
    expect(await Promise.all([first, same])).toEqual(["view of 1", "view of 1"]);
    await settled();
    expect(reads.map((read) => read.stamp)).toEqual(["1", "2"]);
    reads[1]?.finish();
    expect(await more).toBe("view of 2");
  });

  it("exact: never answers with a young view of other counts; reads once it is as old as a reuse", async () => {
    const { reads, get, tick } = setUp({ exact: true });
    const first = get("1");
    reads[0]?.finish(40); // reused for 5 × 40 ms after its read began
    await first;
    tick(100);
    expect(await get("1")).toBe("view of 1");
    const more = get("2");
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(reads).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(reads.map((read) => read.stamp)).toEqual(["1", "2"]);
    reads[1]?.finish();
    expect(await more).toBe("view of 2");
  });

  it("reads again after a failed read", async () => {
    const { cache } = setUp();
    const stamp = { key: "1/0", meta: "m", complete: false };
    await expect(cache.get("r1", stamp, () => Promise.reject(new Error("busy")))).rejects.toThrow(
      "busy",
    );
    expect(await cache.get("r1", stamp, () => Promise.resolve("again"))).toBe("again");
  });
});
