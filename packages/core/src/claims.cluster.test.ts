import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Scheduler } from "@sheepdog/contracts";
import { connect } from "@sheepdog/deploy-ssh";
import { gridEngine } from "@sheepdog/gridengine";
import { slurm } from "@sheepdog/slurm";
import { sqliteStore } from "@sheepdog/store-sqlite";
import {
  describeCluster,
  loginSettings,
  schedulerSettings,
  testSchedulers,
} from "@sheepdog/testcluster";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { SheepdogConfig } from "./config.js";
import { createSheepdog, mapSettled, py, shutdown } from "./index.js";

/** The claims a request's meta recorded (claimed task -> the array task that ran it). */
async function claimsOf(dbfile: string, request: number): Promise<Record<string, number>> {
  const store = sqliteStore({ dbfile });
  try {
    return (await store.getRequest(request)).meta.claims as Record<string, number>;
  } finally {
    await store.close();
  }
}

for (const scheduler of testSchedulers) {
  describeCluster(`tasks claiming others' tasks on the test cluster's ${scheduler}`, (cluster) => {
    let dir: string;
    let config: SheepdogConfig;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), "sheepdog-core-claims-"));
      config = {
        ...schedulerSettings(cluster, scheduler),
        dbfile: join(dir, "sheepdog.sqlite"),
        chunkSize: 1,
      };
    });
    afterAll(async () => {
      await shutdown();
      rmSync(dir, { recursive: true, force: true });
    });

    // Twice as many tasks as the cluster's slots: the tasks that start first keep their slots
    // and run the rest, so the later array tasks find their tasks held and run nothing.
    const tasks = 2 * cluster.slots;

    it("runs a job of more tasks than slots in the slots' first tasks, every result home", async () => {
      const f = py`
import time

def f(x):
    time.sleep(0.5)
    return x * 10
`;
      const args = Array.from({ length: tasks }, (_, i) => [i]);
      const { request, results } = await mapSettled(f, args, config);
      expect(results).toEqual(args.map(([x]) => ({ ok: true, value: (x as number) * 10 })));
      const claims = await claimsOf(config.dbfile as string, request);
      // The later tasks cannot start while the first hold every slot, and those hold them
      // until nothing is left to claim. (A first task that started late may be claimed too.)
      for (let task = cluster.slots + 1; task <= tasks; task++) {
        const holder = claims[String(task)];
        expect(holder).toBeGreaterThanOrEqual(1);
        expect(holder).toBeLessThan(task);
      }
    });

    it("cancels the array tasks whose work was claimed while the others run, and not the job at its end", async () => {
      const remote = await connect(loginSettings(cluster));
      const real = scheduler === "gridengine" ? gridEngine(remote) : slurm(remote);
      const idle: number[] = [];
      let jobCancels = 0;
      const recording: Scheduler = {
        ...real,
        async cancelTasks(job, numbers) {
          await real.cancelTasks?.(job, numbers);
          idle.push(...numbers);
        },
        async cancel(job) {
          jobCancels++;
          await real.cancel(job);
        },
      };
      const sheepdog = createSheepdog({
        cluster: { scheduler: recording, remote },
        dbfile: config.dbfile as string,
        chunkSize: 1,
      });
      try {
        // Calls long enough that the claimed ones still run when the wait next looks.
        const f = py`
import time

def f(x):
    time.sleep(2)
    return x
`;
        const args = Array.from({ length: tasks }, (_, i) => [i]);
        const { request, results } = await sheepdog.mapSettled(f, args);
        expect(results).toEqual(args.map(([x]) => ({ ok: true, value: x })));
        const claims = await claimsOf(config.dbfile as string, request);
        const holders = new Set(Object.values(claims));
        const withoutWork = Object.keys(claims)
          .map(Number)
          .filter((task) => !holders.has(task));
        expect(withoutWork.length).toBeGreaterThan(0);
        expect(idle.sort((a, b) => a - b)).toEqual(withoutWork.sort((a, b) => a - b));
        expect(jobCancels).toBe(0);
      } finally {
        await sheepdog.close();
        await remote.close();
      }
    });

    it("records a claimed task's argument as its holder's when the holder is killed", async () => {
      const victim = cluster.slots + 1;
      const f = py`
import os, signal, time

def f(x):
    if x == ${victim}:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.5)
    return x
`;
      const args = Array.from({ length: tasks }, (_, i) => [i]);
      const { request, results } = await mapSettled(f, args, config);
      const claims = await claimsOf(config.dbfile as string, request);
      // Argument `victim` is task victim + 1's; a task of the first wave claimed it and died.
      const holder = claims[String(victim + 1)];
      expect(holder).toBeDefined();
      for (const [i, outcome] of results.entries()) {
        if (i !== victim) {
          expect(outcome).toEqual({ ok: true, value: i });
          continue;
        }
        expect(outcome.ok).toBe(false);
        const error = outcome.ok ? "" : String(outcome.error);
        expect(error).toContain(`Task ${holder} of job`);
        expect(error).toMatch(/\[(signal|exit)\]/);
      }
    });
  });
}
