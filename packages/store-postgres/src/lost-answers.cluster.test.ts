import { describeCluster } from "@sheepdog/testcluster";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { dropSchemas, testPostgres, throwawaySchema } from "./__fixtures__/postgres.js";
import type { PostgresPool, PostgresPoolClient } from "./postgres-pool.js";
import { postgresStore } from "./postgres-store.js";

const utf8 = (text: string) => new TextEncoder().encode(text);

/**
 * A pool whose connections lose the answer of the first statement that `matches`: the server
 * runs it (and commits it), then the caller sees the connection fail, as when a connection
 * drops between the server's COMMIT and its reply.
 */
function losingPool(
  pool: pg.Pool,
  matches: (sql: string) => boolean,
): PostgresPool & { lost: number } {
  const wrapped = new WeakMap<object, PostgresPoolClient>();
  const losing = {
    lost: 0,
    async connect(): Promise<PostgresPoolClient> {
      const client = await pool.connect();
      let proxy = wrapped.get(client);
      if (!proxy) {
        proxy = new Proxy(client, {
          get(target, key) {
            if (key !== "query") {
              const value = Reflect.get(target, key) as unknown;
              return typeof value === "function" ? value.bind(target) : value;
            }
            return async (sql: string, parameters: unknown[]) => {
              const result = await target.query(sql, parameters);
              if (losing.lost === 0 && matches(sql)) {
                losing.lost += 1;
                throw new Error("Connection terminated unexpectedly");
              }
              return result;
            };
          },
        }) as unknown as PostgresPoolClient;
        wrapped.set(client, proxy);
      }
      return proxy;
    },
    end: () => pool.end(),
  };
  return losing;
}

describeCluster("answers lost after the database committed", (cluster) => {
  const postgres = testPostgres(cluster);
  const made: string[] = [];
  let pool: pg.Pool;
  beforeAll(() => {
    pool = new pg.Pool({ connectionString: postgres.url(), max: 4 });
    pool.on("error", () => {});
  });
  afterAll(async () => {
    await dropSchemas(pool, made);
    await pool.end();
  });
  const open = (matches: (sql: string) => boolean) => {
    const schema = throwawaySchema("lost");
    made.push(schema);
    const losing = losingPool(pool, matches);
    return { losing, store: postgresStore({ pool: losing, schema }) };
  };

  it("stores a report once, and still says it was stored", async () => {
    const { losing, store } = open(
      (sql) => sql.includes("INSERT INTO") && sql.includes(".reports"),
    );
    const { id } = await store.createRequest({
      func: utf8("f"),
      ns: utf8(""),
      args: [utf8("a0"), utf8("a1")],
    });
    expect(await store.putResult(id, 0, utf8("r0"))).toBe(true);
    expect(losing.lost).toBe(1);
    expect(await store.putError(id, 1, "e1")).toBe(true);
    expect(await store.putResult(id, 0, utf8("other"))).toBe(false);
    expect(await store.counts(id)).toEqual({ tasks: 2, results: 1, errors: 1 });
    await store.close();
  });

  it("creates a request once when the answer to its COMMIT is lost", async () => {
    let armed = false; // after the schema's migration, which commits too
    const { losing, store } = open((sql) => armed && sql.toLowerCase() === "commit");
    await store.listRequests();
    armed = true;
    const created = await store.createRequest({
      func: utf8("f"),
      ns: utf8(""),
      args: [utf8("a0")],
    });
    expect(losing.lost).toBe(1);
    const list = await store.listRequests();
    expect(list.map((r) => r.id)).toEqual([created.id]);
    expect((await store.getArgs(created.id, 0)).map((a) => new TextDecoder().decode(a))).toEqual([
      "a0",
    ]);
    await store.close();
  });
});
