import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { describeCluster } from "@sheepdog/testcluster";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { testPostgres, throwawaySchema } from "./__fixtures__/postgres.js";
import { postgresStore } from "./postgres-store.js";

/** Everything an error would show when printed: message, stack, fields and causes. */
function printed(error: unknown): string {
  return `${String(error)}\n${(error as Error).stack}\n${inspect(error, { depth: 10 })}\n${JSON.stringify(error)}`;
}

async function failure(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error("expected a failure");
}

describeCluster("postgresStore's password", (cluster) => {
  const postgres = testPostgres(cluster);
  const { facts } = postgres;
  // The stores of these tests open the tests' database, in a schema of their own (made by the
  // first store that gets in, dropped after).
  const schema = throwawaySchema("credentials");
  const saved = { PGPASSWORD: process.env.PGPASSWORD, PGPASSFILE: process.env.PGPASSFILE };
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "store-postgres-credentials-"));
    process.env.PGPASSFILE = join(dir, "none");
    delete process.env.PGPASSWORD;
  });
  afterEach(() => {
    process.env.PGPASSFILE = join(dir, "none");
    delete process.env.PGPASSWORD;
  });
  afterAll(async () => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    await rm(dir, { recursive: true, force: true });
    const admin = postgres.admin();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  });
  const open = (url: string) =>
    postgresStore({ connectionString: url, schema, reconnectTimeout: 0 });

  it("never prints a password from the URL: a refused login", async () => {
    const wrong = `wrong-${randomBytes(8).toString("hex")}`;
    const url = `postgres://${facts.user}:${wrong}@${facts.host}:${facts.port}/${facts.database}`;
    await using store = open(url);
    const error = await failure(() => store.listRequests());
    expect(error).toMatchObject({ code: "STORE_IO", source: "store-postgres" });
    expect((error as Error).message).toBe(
      `[sheepdog] [store-postgres] ${postgres.bareUrl()} (schema ${schema}) refused the login (password authentication failed for user "${facts.user}"). Check the user, and give its password in PGPASSWORD or a line of ~/.pgpass (mode 0600).`,
    );
    expect(printed(error)).not.toContain(wrong);
    expect(printed(store)).not.toContain(wrong);
  });

  it("never prints the right password either: a database that does not exist", async () => {
    await using store = open(postgres.url("no_such_database"));
    const error = await failure(() => store.listRequests());
    expect(error).toMatchObject({ code: "STORE_IO" });
    expect((error as Error).message).toContain("no_such_database (schema");
    expect((error as Error).message).toContain("does not exist");
    expect(printed(error)).not.toContain(postgres.password);
  });

  it("takes the password from PGPASSWORD", async () => {
    process.env.PGPASSWORD = postgres.password;
    await using store = open(postgres.bareUrl());
    expect(await store.listRequests()).toEqual([]);
  });

  it("takes the password from a password file of mode 0600, and ignores one others can read", async () => {
    const file = join(dir, "pgpass");
    process.env.PGPASSFILE = file;
    await writeFile(
      file,
      `# tests\n${facts.host}:${facts.port}:*:${facts.user}:${postgres.password}\n`,
    );
    await chmod(file, 0o600);
    {
      await using store = open(postgres.bareUrl());
      expect(await store.listRequests()).toEqual([]);
    }
    await chmod(file, 0o644);
    await using store = open(postgres.bareUrl());
    const error = await failure(() => store.listRequests());
    expect(error).toMatchObject({ code: "STORE_IO" });
    expect((error as Error).message).toContain(
      `refused the login: ${file} was ignored: other users may read it (mode 0644). Run "chmod 600 ${file}"`,
    );
    expect(printed(error)).not.toContain(postgres.password);
  });

  it("says where it looked when it found no password", async () => {
    await using store = open(postgres.bareUrl());
    const error = await failure(() => store.listRequests());
    expect((error as Error).message).toContain(
      `refused the login: PGPASSWORD is not set and there is no ${join(dir, "none")}`,
    );
  });
});
