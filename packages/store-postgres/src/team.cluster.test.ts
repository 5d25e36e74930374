import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { canSwitchUsers, describeCluster } from "@sheepdog/testcluster";
import { afterAll, beforeAll, expect, it } from "vitest";
import { testPostgres } from "./__fixtures__/postgres.js";
import { postgresStore } from "./postgres-store.js";

/** Runs SQL as PostgreSQL's superuser (peer login as the user postgres), from standard input. */
function asSuperuser(sql: string, database = "postgres"): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      "runuser",
      ["-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database],
      (error, _stdout, stderr) => (error ? reject(new Error(stderr || String(error))) : resolve()),
    );
    child.stdin?.end(sql);
  });
}

const utf8 = (text: string) => new TextEncoder().encode(text);

describeCluster("a team sharing one schema", (cluster) => {
  const postgres = testPostgres(cluster);
  const { facts } = postgres;
  const tag = randomBytes(5).toString("hex");
  const [team, alice, bob, schema] = ["team", "alice", "bob", "shared"].map(
    (name) => `${name}_${tag}`,
  ) as [string, string, string, string];
  const passwords = {
    alice: randomBytes(12).toString("hex"),
    bob: randomBytes(12).toString("hex"),
  };
  const url = (role: string, password: string) =>
    `postgres://${role}:${password}@${facts.host}:${facts.port}/${facts.database}`;

  beforeAll(async () => {
    if (!canSwitchUsers) return;
    await asSuperuser(
      `CREATE ROLE ${team}; CREATE ROLE ${alice} LOGIN PASSWORD '${passwords.alice}' IN ROLE ${team};
       CREATE ROLE ${bob} LOGIN PASSWORD '${passwords.bob}' IN ROLE ${team};`,
    );
    await asSuperuser(`CREATE SCHEMA ${schema} AUTHORIZATION ${team};`, facts.database);
  });
  afterAll(async () => {
    if (!canSwitchUsers) return;
    await asSuperuser(`DROP SCHEMA IF EXISTS ${schema} CASCADE;`, facts.database);
    await asSuperuser(`DROP ROLE IF EXISTS ${alice}, ${bob}, ${team};`);
  });

  it.runIf(canSwitchUsers)(
    "makes the tables the schema owner's, so that every member of its role can use them",
    async () => {
      const first = postgresStore({ connectionString: url(alice, passwords.alice), schema });
      const { id } = await first.createRequest({
        func: utf8("f"),
        ns: utf8(""),
        args: [utf8("a0"), utf8("a1")],
      });
      await first.close();

      await using second = postgresStore({ connectionString: url(bob, passwords.bob), schema });
      expect(await second.putResult(id, 0, utf8("r0"))).toBe(true);
      expect(await second.counts(id)).toEqual({ tasks: 2, results: 1, errors: 0 });
      const { id: next } = await second.createRequest({ func: utf8("g"), ns: utf8(""), args: [] });
      expect(next).toBeGreaterThan(id);

      const admin = postgres.admin();
      try {
        const { rows } = await admin.query(
          "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = $1",
          [schema],
        );
        expect(rows).toEqual([{ tableowner: team }]);
      } finally {
        await admin.end();
      }
    },
  );
});
