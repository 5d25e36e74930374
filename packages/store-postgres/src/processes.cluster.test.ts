import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { describeCluster } from "@sheepdog/testcluster";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { importCore, mapInChild } from "./__fixtures__/children.js";
import { testPostgres } from "./__fixtures__/postgres.js";
import { postgresStore } from "./postgres-store.js";

describeCluster("several clients on one PostgreSQL database", (cluster) => {
  const postgres = testPostgres(cluster);
  const database = `clients_${randomBytes(6).toString("hex")}`;
  let admin: pg.Pool;
  beforeAll(async () => {
    admin = postgres.admin();
    await admin.query(`CREATE DATABASE ${database}`);
  });
  /** A query on the throwaway database, beside the store. */
  async function inDatabase(text: string) {
    const client = new pg.Client({ connectionString: postgres.url(database) });
    await client.connect();
    try {
      return await client.query(text);
    } finally {
      await client.end();
    }
  }
  afterAll(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  it("takes two processes mapping into it, while a third reads their results", async () => {
    const calls = 80;
    const expected = (tag: string) => Array.from({ length: calls }, (_, x) => [tag, x * x]);
    // One through a store given as a value, one through the default instance and a dbfile URL
    // whose password comes from PGPASSWORD.
    const a = mapInChild(["value", postgres.url(database), "a", String(calls)]);
    const b = mapInChild(["default", postgres.bareUrl(database), "b", String(calls)], {
      ...process.env,
      PGPASSWORD: postgres.password,
    });
    let running = true;
    const both = Promise.all([a, b]).finally(() => {
      running = false;
    });
    const core = await importCore();
    const store = postgresStore({ connectionString: postgres.url(database) });
    const reader = core.createSheepdog({ store });
    let partialLooks = 0;
    try {
      while (running) {
        partialLooks += await readWhileRunning(store, reader, calls);
        await sleep(100);
      }
      const [fromA, fromB] = await both;
      expect(fromA.results).toEqual(expected("a"));
      expect(fromB.results).toEqual(expected("b"));
      expect(fromA.request).not.toBe(fromB.request);
      const summaries = await store.listRequests();
      expect(summaries.map(({ tasks, results, errors }) => ({ tasks, results, errors }))).toEqual([
        { tasks: calls, results: calls, errors: 0 },
        { tasks: calls, results: calls, errors: 0 },
      ]);
      // Each task has one report row, and the counts say as much.
      const { rows: reported } = await inDatabase(
        "SELECT request_id AS id, count(*)::int AS n FROM sheepdog.reports GROUP BY request_id ORDER BY 1",
      );
      expect(reported).toEqual(summaries.map(({ id }) => ({ id, n: calls })));
      for (const { id } of summaries) {
        const rows = await reader.getResults(id);
        expect(rows.map(([, result]) => result)).toEqual(
          expected(id === fromA.request ? "a" : "b"),
        );
      }
      // The third client saw results arrive while both maps ran.
      expect(partialLooks).toBeGreaterThan(0);
    } finally {
      await reader.close();
      await store.close();
    }
  }, 180_000);
});

/**
 * Reads every request's results as the third client: each result present is the right one for
 * its task, and at least as many as the counts said a moment before. Returns how many requests
 * it saw part-way.
 */
async function readWhileRunning(
  store: ReturnType<typeof postgresStore>,
  reader: { getResults(id: number): Promise<[unknown[], unknown][]> },
  calls: number,
): Promise<number> {
  let partial = 0;
  for (const summary of await store.listRequests()) {
    const rows = await reader.getResults(summary.id);
    expect(rows).toHaveLength(calls);
    const present = rows.filter(([, result]) => result !== null);
    expect(present.length).toBeGreaterThanOrEqual(summary.results);
    const tags = new Set(present.map(([, result]) => (result as [string])[0]));
    expect(tags.size).toBeLessThanOrEqual(1);
    for (const [args, result] of present) {
      const x = args[0] as number;
      expect((result as [string, number])[1]).toBe(x * x);
    }
    if (present.length > 0 && present.length < calls) partial += 1;
  }
  return partial;
}
