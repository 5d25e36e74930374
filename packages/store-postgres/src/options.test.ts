import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SheepdogError } from "@sheepdog/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkOptions } from "./internal/options.js";
import { matchPgpass, passwordFromPgpass, pgpassFields } from "./internal/pgpass.js";
import { postgresStore } from "./postgres-store.js";
import type { PostgresStoreOptions } from "./postgres-store-options.js";

const secret = "s3cr3t-Pa55";

function configError(options: unknown): SheepdogError {
  try {
    checkOptions(options as PostgresStoreOptions, {});
  } catch (error) {
    if (SheepdogError.isInstance(error)) return error;
    throw error;
  }
  throw new Error("expected CONFIG_INVALID");
}

describe("postgresStore's options", () => {
  it("names the database without its password, whatever the URL holds", () => {
    const checked = checkOptions(
      { connectionString: `postgresql://alice:${secret}@db.lab:5433/runs?application_name=x` },
      {},
    );
    expect(checked.name).toBe("postgres://alice@db.lab:5433/runs (schema sheepdog)");
    expect(JSON.stringify(checked.name)).not.toContain(secret);
    const query = checkOptions(
      { connectionString: `postgres://alice@db.lab/runs?password=${secret}`, schema: "team" },
      {},
    );
    expect(query.name).toBe("postgres://alice@db.lab:5432/runs (schema team)");
  });

  it("fills what the URL leaves out from PGHOST, PGPORT, PGUSER and PGDATABASE", () => {
    const env = { PGHOST: "pg.lab", PGPORT: "6543", PGUSER: "bob", PGDATABASE: "shared" };
    expect(checkOptions({ connectionString: "postgres://" }, env).name).toBe(
      "postgres://bob@pg.lab:6543/shared (schema sheepdog)",
    );
    expect(checkOptions({ connectionString: "postgres:///mine" }, env).name).toBe(
      "postgres://bob@pg.lab:6543/mine (schema sheepdog)",
    );
  });

  it("refuses a malformed URL without quoting it", () => {
    for (const url of [`mysql://root:${secret}@h/db`, `postgres://u:${secret}@h:port/db`]) {
      const error = configError({ connectionString: url });
      expect(error.code).toBe("CONFIG_INVALID");
      expect(error.message).not.toContain(secret);
      expect(error.cause).toBeUndefined();
    }
  });

  it("needs exactly one of connectionString and pool, and says which to pass", () => {
    expect(configError({}).message).toContain("postgresStore needs connectionString");
    expect(configError(undefined).code).toBe("CONFIG_INVALID");
    const pool = { connect: async () => ({}), end: async () => {} };
    expect(configError({ connectionString: "postgres://h/db", pool }).message).toContain(
      "not both",
    );
    expect(configError({ pool: {} }).message).toContain("pool must be a node-postgres Pool");
    expect(configError({ pool, maxConnections: 3 }).message).toContain("maxConnections");
    expect(configError({ connectionString: 42 }).message).toContain("not a number");
  });

  it("suggests the option meant by an unknown one", () => {
    expect(configError({ url: "postgres://h/db" }).message).toBe(
      '[sheepdog] [store-postgres] Unknown option "url" for postgresStore. Did you mean "connectionString"?',
    );
    expect(configError({ connectionString: "postgres://h/db", shcema: "x" }).message).toContain(
      'Did you mean "schema"?',
    );
  });

  it("takes a schema that is a plain lower-case identifier only", () => {
    for (const schema of ["Sheepdog", "a-b", 'x"; DROP TABLE y; --', "1abc", "", "a".repeat(64)]) {
      expect(configError({ connectionString: "postgres://h/db", schema }).message).toContain(
        "schema must be a lower-case SQL identifier",
      );
    }
    expect(checkOptions({ connectionString: "postgres://h/db", schema: "team_2" }, {}).schema).toBe(
      "team_2",
    );
  });

  it("checks reconnectTimeout and maxConnections", () => {
    const url = "postgres://h/db";
    expect(configError({ connectionString: url, reconnectTimeout: -1 }).message).toContain(
      "reconnectTimeout must be a number of at least 0",
    );
    expect(configError({ connectionString: url, maxConnections: 0 }).message).toContain(
      "maxConnections must be a number of at least 1",
    );
    expect(checkOptions({ connectionString: url }, {}).reconnectTimeout).toBe(30_000);
  });

  it("is a store at once, touching nothing until used, and shows no password", async () => {
    const store = postgresStore({ connectionString: `postgres://u:${secret}@127.0.0.1:1/db` });
    expect(store.database).toBe("postgres://u@127.0.0.1:1/db (schema sheepdog)");
    expect(store.schema).toBe("sheepdog");
    expect(JSON.stringify(store)).not.toContain(secret);
    await store.close();
    await expect(store.counts(1)).rejects.toMatchObject({ code: "CLOSED" });
  });
});

describe("the password file", () => {
  let dir: string;
  const target = { host: "db.lab", port: 5432, database: "runs", user: "alice" };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "store-postgres-pgpass-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("splits lines into five fields, with \\: and \\\\ escaped", () => {
    expect(pgpassFields("h:5432:db:u:p\\:w\\\\d")).toEqual(["h", "5432", "db", "u", "p:w\\d"]);
    expect(pgpassFields("h:5432:db:u:a:b")).toEqual(["h", "5432", "db", "u", "a:b"]);
    expect(pgpassFields("# h:5432:db:u:p")).toBeUndefined();
    expect(pgpassFields("h:5432:db")).toBeUndefined();
  });

  it("takes the first matching line, * matching anything, a socket matching localhost", () => {
    const text = "other:5432:runs:alice:no\n*:5432:runs:alice:first\n*:*:*:*:second\n";
    expect(matchPgpass(text, target)).toBe("first");
    expect(matchPgpass(text, { ...target, port: 5433 })).toBe("second");
    const local = "localhost:5432:runs:alice:local\n";
    expect(matchPgpass(local, { ...target, host: "/var/run/postgresql" })).toBe("local");
    expect(matchPgpass(local, target)).toBeUndefined();
  });

  it("is read only when nobody else may read it (mode 0600), as libpq does", async () => {
    const file = join(dir, "pgpass");
    await writeFile(file, "db.lab:5432:runs:alice:from-file\n");
    const env = { PGPASSFILE: file };
    await chmod(file, 0o644);
    const open = await passwordFromPgpass(target, env);
    expect(open.password).toBeUndefined();
    expect(open).toMatchObject({ why: expect.stringContaining(`chmod 600 ${file}`) });
    await chmod(file, 0o600);
    expect(await passwordFromPgpass(target, env)).toEqual({ password: "from-file" });
    expect(await passwordFromPgpass({ ...target, user: "bob" }, env)).toMatchObject({
      why: `${file} has no line for db.lab:5432:runs:bob`,
    });
    expect(await passwordFromPgpass(target, { PGPASSFILE: join(dir, "none") })).toMatchObject({
      why: expect.stringContaining("there is no"),
    });
  });
});
