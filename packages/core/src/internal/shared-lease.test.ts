import type { Cluster } from "@sheepdog/contracts";
import { describe, expect, it } from "vitest";
import type { Context } from "./context.js";
import { SharedLease } from "./shared-lease.js";

/** A context whose openCluster counts opens and releases, failing the first `failures` opens. */
function countingContext(failures = 0) {
  const counts = { opened: 0, released: 0, slots: 0 };
  const cluster = {
    scheduler: {
      name: "counted",
      slots: async () => {
        counts.slots += 1;
        return 4;
      },
    },
    remote: { name: "counted" },
  } as unknown as Cluster;
  const context = {
    openCluster: async () => {
      counts.opened += 1;
      if (counts.opened <= failures) throw new Error("no route to host");
      return {
        cluster,
        release: async () => {
          counts.released += 1;
        },
      };
    },
  } as unknown as Context;
  return { context, counts, cluster };
}

describe("SharedLease", () => {
  it("opens the cluster once for every request, and releases it once, at the end", async () => {
    const { context, counts, cluster } = countingContext();
    const shared = new SharedLease(context);
    const leases = await Promise.all([1, 2, 3].map(() => shared.context.openCluster()));
    for (const lease of leases) {
      expect(lease.cluster).toBe(cluster);
      await lease.release();
    }
    expect(await shared.slots()).toBe(4);
    expect(await shared.slots()).toBe(4);
    expect(counts).toEqual({ opened: 1, released: 0, slots: 1 });
    await shared.release();
    expect(counts.released).toBe(1);
  });

  it("opens again after a failed open, and releases nothing it never opened", async () => {
    const { context, counts } = countingContext(1);
    const shared = new SharedLease(context);
    await expect(shared.context.openCluster()).rejects.toThrow("no route to host");
    await shared.context.openCluster();
    expect(counts.opened).toBe(2);
    await shared.release();
    expect(counts.released).toBe(1);
    await new SharedLease(countingContext().context).release();
  });
});
