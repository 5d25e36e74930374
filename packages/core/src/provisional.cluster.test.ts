import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sqliteStore } from "@sheepdog/store-sqlite";
import {
  describeCluster,
  runAsLoginUser,
  schedulerSettings,
  unusedPort,
} from "@sheepdog/testcluster";
import { afterAll, beforeAll, expect, it } from "vitest";
import { fillingStore } from "./__fixtures__/filling-store.js";
import { createSheepdog, py, SheepdogError } from "./index.js";

// A task whose worker could not deliver its reports exits non-zero with them in its output:
// the error map records for it is provisional, and recover replaces it with the real report.
describeCluster("provisional deaths on the test cluster's GridEngine", (cluster) => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "sheepdog-provisional-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const f = py`
def f(x):
    if x == 3:
        raise ValueError("three")
    return x * 10
`;

  /** An instance over a SQLite store that can be filled, whose workers give up after 3 s. */
  async function open(name: string) {
    const filling = fillingStore(sqliteStore({ dbfile: join(dir, `${name}.sqlite`) }));
    const sheepdog = createSheepdog({
      ...schedulerSettings(cluster, "gridengine"),
      store: filling.store,
      port: await unusedPort(),
      retryWindowSeconds: 3,
      chunkSize: 1,
    });
    return { ...filling, sheepdog };
  }

  it("a server that cannot store reports: map records the deaths, recover stores the real results", async () => {
    const { store, refuse, sheepdog } = await open("reports");
    try {
      refuse("reports");
      const settled = await sheepdog.mapSettled(f, [[1], [2], [3]]);
      expect(settled.results.map((r) => r.ok)).toEqual([false, false, false]);
      const deaths = await store.getErrors(settled.request);
      expect(deaths.map((d) => d.provisional)).toEqual([true, true, true]);
      expect(deaths[0]?.error).toContain("ended without reporting");
      expect(deaths[0]?.error).toContain("sheepdog recover");

      refuse("nothing");
      expect(await sheepdog.recover(settled.request)).toEqual({ found: 3, stored: 3, missing: 0 });
      const results = await sheepdog.getResults(settled.request);
      expect(results.map(([args, result]) => [args, result])).toEqual([
        [[1], 10],
        [[2], 20],
        [[3], null],
      ]);
      const errors = await sheepdog.getErrors(settled.request);
      expect(errors).toHaveLength(1);
      expect(errors[0]?.[1]).toContain("ValueError: three");
      expect(await store.counts(settled.request)).toEqual({ tasks: 3, results: 2, errors: 1 });
      // A real report is final: recovering again stores nothing.
      expect(await sheepdog.recover(settled.request)).toEqual({ found: 3, stored: 0, missing: 0 });
    } finally {
      await sheepdog.close();
      await store.close();
    }
  }, 150_000);

  it("a task that died while nobody waited (mapAsync, instance closed): a new instance's getErrors and requestStatus show the death and its cause", async () => {
    const dbfile = join(dir, "unwatched.sqlite");
    const settings = { ...schedulerSettings(cluster, "gridengine"), dbfile, chunkSize: 1 };
    // The call marks that it has its work (a worker fetches it from the instance's server),
    // then kills itself once the instance has closed.
    const begun = `/tmp/sheepdog-unwatched-${process.pid}`;
    const killer = py`
def f(x):
    import os, signal, time
    open(${JSON.stringify(begun)}, "w").close()
    time.sleep(3)
    os.kill(os.getpid(), signal.SIGKILL)
`;
    const first = createSheepdog({ ...settings, port: await unusedPort() });
    const request = await first.mapAsync(killer, [[2]]);
    for (let i = 0; i < 240; i++) {
      const { stdout } = await runAsLoginUser(cluster, `test -e ${begun} && echo yes || true`);
      if (stdout.trim() === "yes") break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    await first.close();
    await runAsLoginUser(cluster, `rm -f ${begun}`);

    const second = createSheepdog(settings);
    try {
      let errors: [unknown[], string][] = [];
      // The test cluster is shared: the task may wait in the queue for a while.
      for (let i = 0; i < 240 && errors.length === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        errors = await second.getErrors(request);
      }
      expect(errors).toHaveLength(1);
      expect(errors[0]?.[0]).toEqual([2]);
      expect(errors[0]?.[1]).toMatch(/ended without reporting .*\[signal\]: .*(signal 9|137)/);
      const status = await second.status(request);
      expect(status).toMatchObject({ tasks: 1, results: 0, errors: 1 });
    } finally {
      await second.close();
    }
  }, 300_000);

  it("a full disk: the map fails, and the results kept in the output files are stored once space is back", async () => {
    const { store, refuse, sheepdog } = await open("disk");
    let request = 0;
    try {
      const failed = await sheepdog
        .map(f, [[1], [2], [3]], {
          onProgress: (progress) => {
            // The request and its job are stored: now the disk fills up.
            request = progress.request;
            refuse("writes");
          },
        })
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(SheepdogError.isInstance(failed) && failed.code).toBe("STORE_IO");
      expect(await store.counts(request)).toEqual({ tasks: 3, results: 0, errors: 0 });

      refuse("nothing");
      let outcome = await sheepdog.recover(request);
      // The map may fail before every worker has given up and printed its reports.
      for (let i = 0; i < 30 && outcome.missing > 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        outcome = await sheepdog.recover(request);
      }
      expect(outcome.missing).toBe(0);
      const results = await sheepdog.getResults(request);
      expect(results.map(([, result]) => result)).toEqual([10, 20, null]);
      expect((await sheepdog.getErrors(request))[0]?.[1]).toContain("ValueError: three");
    } finally {
      await sheepdog.close();
      await store.close();
    }
  }, 150_000);
});
