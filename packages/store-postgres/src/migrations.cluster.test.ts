import { describeCluster } from "@sheepdog/testcluster";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dropSchemas, testPostgres, throwawaySchema } from "./__fixtures__/postgres.js";
import { migrations } from "./internal/migrations.js";
import { postgresStore, postgresStoreWithMigrations } from "./postgres-store.js";

const utf8 = (text: string) => new TextEncoder().encode(text);
const text = (bytes: Uint8Array | null) => (bytes ? new TextDecoder().decode(bytes) : null);

describeCluster("postgresStore's schema migrations", (cluster) => {
  const postgres = testPostgres(cluster);
  const made: string[] = [];
  let admin: pg.Pool;
  beforeAll(() => {
    admin = postgres.admin();
  });
  afterAll(async () => {
    await dropSchemas(admin, made);
    await admin.end();
  });
  const schema = (prefix: string) => {
    const name = throwawaySchema(prefix);
    made.push(name);
    return name;
  };
  const open = (name: string) =>
    postgresStore({ connectionString: postgres.url(), schema: name, reconnectTimeout: 5000 });
  const versions = async (name: string) =>
    (await admin.query(`SELECT version, name FROM "${name}".migrations ORDER BY version`)).rows;
  const tokenIndex = async (name: string) =>
    (
      await admin.query(
        "SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND indexname = $2",
        [name, "requests_token_hash"],
      )
    ).rows.length;

  describe("upgrades", () => {
    it("makes a missing schema, and an empty one, a Sheepdog schema of the latest version", async () => {
      const missing = schema("missing");
      const empty = schema("empty");
      await admin.query(`CREATE SCHEMA "${empty}"`);
      for (const name of [missing, empty]) {
        await using store = open(name);
        expect(await store.listRequests()).toEqual([]);
        expect(await versions(name)).toEqual([
          { version: 1, name: "requests, args and reports" },
          { version: 2, name: "requests found by their token's hash" },
          { version: 3, name: "provisional errors" },
          { version: 4, name: "task facts and logs" },
        ]);
        expect(await tokenIndex(name)).toBe(1);
      }
    });

    it("brings a version 1 schema with data to the latest, keeping everything", async () => {
      const name = schema("v1");
      const v1 = postgresStoreWithMigrations(
        { connectionString: postgres.url(), schema: name },
        migrations.filter((m) => m.version === 1),
      );
      const { id, token } = await v1.createRequest({
        func: utf8("f"),
        ns: utf8("ns"),
        args: [utf8("a0"), utf8("a1"), utf8("a2")],
        meta: { host: "fear" },
      });
      await v1.close();
      // Reports as version 1 wrote them (this release's statements name the new column).
      await admin.query(
        `INSERT INTO "${name}".reports (request_id, idx, result, error) VALUES ($1, 0, $2, NULL), ($1, 1, NULL, 'e1')`,
        [id, Buffer.from("r0")],
      );
      await admin.query(`UPDATE "${name}".requests SET results = 1, errors = 1 WHERE id = $1`, [
        id,
      ]);
      expect((await versions(name)).map((v) => v.version)).toEqual([1]);
      expect(await tokenIndex(name)).toBe(0);

      await using store = open(name);
      expect(await store.counts(id)).toEqual({ tasks: 3, results: 1, errors: 1 });
      expect((await versions(name)).map((v) => v.version)).toEqual([1, 2, 3, 4]);
      expect(await tokenIndex(name)).toBe(1);
      expect((await store.getErrors(id)).map((e) => [e.error, e.provisional])).toEqual([
        ["e1", undefined],
      ]);
      expect(await store.putResult(id, 1, utf8("late"))).toBe(false);
      expect((await store.getResults(id)).map((r) => [text(r.args), text(r.result)])).toEqual([
        ["a0", "r0"],
        ["a1", null],
        ["a2", null],
      ]);
      expect((await store.getRequest(id)).meta).toEqual({ host: "fear" });
      expect(token.length).toBeGreaterThan(0);
      expect(await store.putError(id, 2, "died", { provisional: true })).toBe(true);
      expect(await store.putResult(id, 2, utf8("r2"))).toBe(true);
      expect(await store.counts(id)).toEqual({ tasks: 3, results: 2, errors: 1 });
      const second = await store.createRequest({ func: utf8("g"), ns: utf8(""), args: [] });
      expect(second.id).toBeGreaterThan(id);
    });

    it("migrates once when several stores open an empty schema at the same moment", async () => {
      const name = schema("race");
      const stores = Array.from({ length: 4 }, () => open(name));
      try {
        const ids = await Promise.all(
          stores.map(
            async (store) =>
              (await store.createRequest({ func: utf8("f"), ns: utf8(""), args: [utf8("a")] })).id,
          ),
        );
        expect(new Set(ids).size).toBe(4);
      } finally {
        await Promise.all(stores.map((store) => store.close()));
      }
      expect((await versions(name)).map((v) => v.version)).toEqual([1, 2, 3, 4]);
    });

    it("brings a version 3 schema to version 4: its reports have no facts, new ones can", async () => {
      const name = schema("v3");
      const v3 = postgresStoreWithMigrations(
        { connectionString: postgres.url(), schema: name },
        migrations.filter((m) => m.version <= 3),
      );
      const { id } = await v3.createRequest({
        func: utf8("f"),
        ns: utf8(""),
        args: [utf8("a0"), utf8("a1"), utf8("a2")],
      });
      await v3.close();
      // Reports as version 3 wrote them (this release's statements name the new columns).
      await admin.query(
        `INSERT INTO "${name}".reports (request_id, idx, result, error, provisional) VALUES ($1, 0, $2, NULL, false), ($1, 1, NULL, 'died', true)`,
        [id, Buffer.from("r0")],
      );
      await admin.query(`UPDATE "${name}".requests SET results = 1, errors = 1 WHERE id = $1`, [
        id,
      ]);

      await using store = open(name);
      expect(await store.getTaskFacts(id)).toStrictEqual([
        { kind: "result", hasLog: false },
        { kind: "error", provisional: true, hasLog: false },
        null,
      ]);
      const facts = { host: "n1", startedAt: 5, log: "out\n" };
      expect(
        await store.putReports(id, [
          { index: 1, kind: "result", value: utf8("r1"), facts },
          { index: 2, kind: "error", value: "e2", facts: { attempt: 2 } },
        ]),
      ).toEqual([true, true]);
      expect(await store.getTaskFacts(id, 1)).toStrictEqual([
        { kind: "result", host: "n1", startedAt: 5, hasLog: true },
        { kind: "error", attempt: 2, hasLog: false },
      ]);
      expect(await store.getLogs(id)).toEqual([{ index: 1, log: "out\n" }]);
      expect(await store.counts(id)).toEqual({ tasks: 3, results: 2, errors: 1 });
      expect((await versions(name)).map((v) => v.version)).toEqual([1, 2, 3, 4]);
    });
  });

  describe("refusals", () => {
    it("leaves a schema of other tables untouched (STORE_CORRUPT)", async () => {
      const name = schema("foreign");
      await admin.query(`CREATE SCHEMA "${name}"; CREATE TABLE "${name}".invoices (id int)`);
      await using store = open(name);
      await expect(store.listRequests()).rejects.toMatchObject({
        code: "STORE_CORRUPT",
        message: expect.stringContaining("it has no migrations table"),
      });
      const tables = await admin.query("SELECT tablename FROM pg_tables WHERE schemaname = $1", [
        name,
      ]);
      expect(tables.rows).toEqual([{ tablename: "invoices" }]);
    });

    it("refuses a schema written by a newer Sheepdog (STORE_VERSION)", async () => {
      const name = schema("newer");
      {
        await using store = open(name);
        await store.listRequests();
      }
      await admin.query(
        `INSERT INTO "${name}".migrations (version, name) VALUES (5, 'from the future')`,
      );
      await using store = open(name);
      await expect(store.listRequests()).rejects.toMatchObject({
        code: "STORE_VERSION",
        message: expect.stringContaining("has schema version 5"),
      });
    });
  });
});
