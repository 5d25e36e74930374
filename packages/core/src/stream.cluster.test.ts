import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { JobRef, Remote } from "@sheepdog/contracts";
import { connect } from "@sheepdog/deploy-ssh";
import { describeCluster, loginSettings, schedulerSettings } from "@sheepdog/testcluster";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { SheepdogConfig } from "./config.js";
import { listRequests, mapStream, py, shutdown } from "./index.js";

describeCluster("mapStream on the test cluster's GridEngine", (cluster) => {
  let dir: string;
  let config: SheepdogConfig;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "sheepdog-core-stream-"));
    config = { ...schedulerSettings(cluster, "gridengine"), dbfile: join(dir, "sheepdog.sqlite") };
  });
  afterAll(async () => {
    await shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `command` on the head node as the test user, over a connection of its own. */
  async function onHead(command: string): Promise<string> {
    const remote: Remote = await connect(loginSettings(cluster));
    try {
      return (await remote.exec(command, { timeoutMs: 30_000 })).stdout;
    } finally {
      await remote.close();
    }
  }

  const square = py<[number, number?], number>`
def f(x, nap=0):
    import time
    time.sleep(nap)
    return x * x
`;

  it("streams 300 calls in 3 windows, in argument order, every index once", async () => {
    const args = (function* () {
      for (let x = 0; x < 300; x++) yield [x] as [number];
    })();
    const before = (await listRequests({ dbfile: config.dbfile }).catch(() => [])).length;
    let next = 0;
    for await (const item of mapStream(square, args, config, {
      order: "arguments",
      windowSize: 100,
    })) {
      expect(item).toEqual({ index: next, ok: true, value: next * next });
      next += 1;
    }
    expect(next).toBe(300);
    const requests = (await listRequests({ dbfile: config.dbfile })).slice(before);
    expect(requests.map((r) => [r.tasks, r.results, r.errors])).toEqual([
      [100, 100, 0],
      [100, 100, 0],
      [100, 100, 0],
    ]);
  }, 120_000);

  it("leaving the loop mid-way leaves none of its jobs in qstat", async () => {
    const before = (await listRequests({ dbfile: config.dbfile })).length;
    // Call 0 returns at once; every other sleeps for a minute.
    const args = Array.from({ length: 40 }, (_, x) => [x, x === 0 ? 0 : 60] as [number, number]);
    for await (const item of mapStream(
      square,
      args,
      { ...config, chunkSize: 1 },
      { windowSize: 8 },
    )) {
      // Call 0 comes first when the queue is free; on a busy shared queue another may.
      expect(item).toEqual({ index: item.index, ok: true, value: item.index ** 2 });
      break;
    }
    const requests = (await listRequests({ dbfile: config.dbfile })).slice(before);
    // Up to four windows are in flight: those read by the break. The newest may have been
    // cancelled while it was being submitted, before it had a job.
    expect(requests.length).toBeGreaterThanOrEqual(1);
    expect(requests.length).toBeLessThanOrEqual(4);
    const jobIds = requests.flatMap(
      (r) => (r.meta.job as JobRef | undefined)?.parts.map((p) => p.jobId) ?? [],
    );
    expect(jobIds.length).toBeGreaterThanOrEqual(1);
    // qdel ends running tasks within a few seconds; none of these jobs stays listed.
    let listed = "";
    for (let i = 0; i < 30; i++) {
      listed = await onHead(`qstat -u ${cluster.user} | awk 'NR > 2 { print $1 }' | sort -u`);
      if (!jobIds.some((id) => listed.split("\n").includes(id))) break;
      await sleep(500);
    }
    expect(listed.split("\n").filter((id) => jobIds.includes(id))).toEqual([]);
    for (const request of requests) {
      expect(request.results + request.errors).toBeLessThan(8);
      expect(request.meta.cancelled).toEqual({ at: expect.any(Number), reason: "interrupted" });
    }
  }, 90_000);
});
