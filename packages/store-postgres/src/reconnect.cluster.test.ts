import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { describeCluster } from "@sheepdog/testcluster";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { importCore, importLocal } from "./__fixtures__/children.js";
import { testPostgres } from "./__fixtures__/postgres.js";
import { postgresStore } from "./postgres-store.js";

describeCluster("a map whose database goes away for a few seconds", (cluster) => {
  const postgres = testPostgres(cluster);
  // A database of its own, so that cutting it off touches no other test.
  const database = `reconnect_${randomBytes(6).toString("hex")}`;
  let admin: pg.Pool;
  beforeAll(async () => {
    admin = postgres.admin();
    await admin.query(`CREATE DATABASE ${database}`);
  });
  afterAll(async () => {
    await admin.query(`ALTER DATABASE ${database} CONNECTION LIMIT -1`);
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  /** How many reports the database holds, read beside the store. */
  async function reportsStored(): Promise<{ rows: number; counted: number }> {
    const client = new pg.Client({ connectionString: postgres.url(database) });
    await client.connect();
    try {
      const { rows } = await client.query(
        `SELECT (SELECT count(*)::int FROM sheepdog.reports) AS rows,
                (SELECT coalesce(sum(results + errors), 0)::int FROM sheepdog.requests) AS counted`,
      );
      return rows[0] as { rows: number; counted: number };
    } catch {
      return { rows: 0, counted: 0 }; // the schema is not made yet
    } finally {
      await client.end();
    }
  }

  /**
   * Cuts the database off: no new connection is let in (CONNECTION LIMIT 0) and every one open
   * is ended (pg_terminate_backend), for `ms`. Resolves how many connections it ended.
   */
  async function cutOff(ms: number): Promise<number> {
    await admin.query(`ALTER DATABASE ${database} CONNECTION LIMIT 0`);
    const { rows } = await admin.query(
      "SELECT count(pg_terminate_backend(pid))::int AS ended FROM pg_stat_activity WHERE datname = $1",
      [database],
    );
    await sleep(ms);
    await admin.query(`ALTER DATABASE ${database} CONNECTION LIMIT -1`);
    return (rows[0] as { ended: number }).ended;
  }

  it("reconnects and carries on: every result once, none lost or doubled", async () => {
    const calls = 120;
    const core = await importCore();
    const { localScheduler, localRemote } = await importLocal();
    const store = postgresStore({ connectionString: postgres.url(database) });
    const sheepdog = core.createSheepdog({
      store,
      cluster: { scheduler: localScheduler({ concurrency: 2 }), remote: localRemote() },
    });
    const f = core.py`
def f(x):
    import time
    time.sleep(0.1)
    return x * 3
`;
    try {
      const mapping = sheepdog.map(
        f,
        Array.from({ length: calls }, (_, x) => [x]),
      );
      // Awaited below; a failure while the database is cut off is reported there, not unhandled.
      mapping.catch(() => {});
      let before = await reportsStored();
      while (before.rows < 10) {
        await sleep(50);
        before = await reportsStored();
      }
      const ended = await cutOff(3000);
      expect(ended).toBeGreaterThan(0);
      const results = await mapping;
      expect(before.rows).toBeLessThan(calls);
      expect(results).toEqual(Array.from({ length: calls }, (_, x) => x * 3));
      expect(await reportsStored()).toEqual({ rows: calls, counted: calls });
    } finally {
      await sheepdog.close();
      await store.close();
    }
  }, 180_000);
});
