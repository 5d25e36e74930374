import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { dbfileKey, isPostgresUrl, openDefaultStore } from "./store.js";

describe("the default store of a dbfile", () => {
  it("is PostgreSQL for a postgres:// or postgresql:// URL, SQLite for anything else", () => {
    expect(isPostgresUrl("postgres://alice@db.lab/runs")).toBe(true);
    expect(isPostgresUrl("POSTGRESQL://alice@db.lab/runs")).toBe(true);
    expect(isPostgresUrl("./postgres://x")).toBe(false);
    expect(isPostgresUrl("./sheepdog.sqlite")).toBe(false);
  });

  it("keys a URL as it is, and a file by its absolute path", () => {
    expect(dbfileKey("postgres://alice@db.lab:5432/runs")).toBe(
      "postgres://alice@db.lab:5432/runs",
    );
    expect(dbfileKey("x.sqlite")).toBe(resolve("x.sqlite"));
  });

  it("refuses a URL with a password in it, without showing the password", () => {
    for (const url of [
      "postgres://alice:hunter2@db.lab/runs",
      "postgres://alice@db.lab/runs?password=hunter2",
    ]) {
      let caught: unknown;
      try {
        dbfileKey(url);
      } catch (error) {
        caught = error;
      }
      expect(caught).toMatchObject({ code: "CONFIG_INVALID", source: "core" });
      expect(String((caught as Error).message)).toContain("PGPASSWORD or a line of ~/.pgpass");
      expect(String((caught as Error).message)).not.toContain("hunter2");
    }
  });

  it("opens a Postgres store on a URL, connecting only when used", async () => {
    const store = (await openDefaultStore("postgres://alice@127.0.0.1:1/runs")) as unknown as {
      database: string;
      close(): Promise<void>;
    };
    expect(store.database).toBe("postgres://alice@127.0.0.1:1/runs (schema sheepdog)");
    await store.close();
  });
});
