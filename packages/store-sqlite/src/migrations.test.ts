import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SheepdogError } from "@sheepdog/contracts";
import Database from "better-sqlite3";
import { afterEach, beforeEach, expect, it } from "vitest";
import { APPLICATION_ID, latestSchema, type Migration, migrations } from "./internal/migrations.js";
import { sqliteStore, sqliteStoreWithMigrations } from "./sqlite-store.js";

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "sheepdog-migrations-"));
  file = join(dir, "sheepdog.sqlite");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const utf8 = (text: string) => new TextEncoder().encode(text);

/** The current schema's version, and a step after it, as a later release would add one. */
const latest = migrations.length;
const addNotes: Migration = {
  version: latest + 1,
  name: "request notes",
  async up(db) {
    await db.schema
      .alterTable("requests")
      .addColumn("note", "text", (c) => c.notNull().defaultTo("none"))
      .execute();
    await db.schema
      .createIndex("arg_slices_request")
      .on("arg_slices")
      .columns(["request_id"])
      .execute();
  },
};

function header(path: string): { applicationId: number; version: number } {
  const db = new Database(path, { readonly: true });
  try {
    return {
      applicationId: Number(db.pragma("application_id", { simple: true })),
      version: Number(db.pragma("user_version", { simple: true })),
    };
  } finally {
    db.close();
  }
}

/**
 * Turns a file back into the version 4 layout: the facts of each report that has any, and its
 * log, a row of `facts`, as version 4 wrote them.
 */
function toVersion4(raw: Database.Database): void {
  raw.exec(`
    CREATE TABLE "facts" ("arg_id" integer primary key, "started_at" real, "ended_at" real,
      "host" text, "peak_memory_bytes" integer, "attempt" integer, "log" text);
    INSERT INTO facts
      SELECT r.arg_id, r.started_at, r.ended_at, r.host, r.peak_memory_bytes, r.attempt, l.log
      FROM reports r LEFT JOIN logs l ON l.arg_id = r.arg_id
      WHERE coalesce(r.started_at, r.ended_at, r.host, r.peak_memory_bytes, r.attempt, l.log)
        IS NOT NULL;
    DROP TABLE logs;
    ALTER TABLE reports DROP COLUMN started_at;
    ALTER TABLE reports DROP COLUMN ended_at;
    ALTER TABLE reports DROP COLUMN host;
    ALTER TABLE reports DROP COLUMN peak_memory_bytes;
    ALTER TABLE reports DROP COLUMN attempt;
    PRAGMA user_version = 4;
  `);
}

/**
 * Turns a file back into the version 3 layout: every argument a row of `args` (from the
 * slices this version writes), as version 3 wrote them.
 */
function toVersion3(raw: Database.Database): void {
  toVersion4(raw);
  raw.exec(
    "CREATE TABLE args (id integer PRIMARY KEY, request_id integer NOT NULL, value blob NOT NULL)",
  );
  const insert = raw.prepare("INSERT INTO args (id, request_id, value) VALUES (?, ?, ?)");
  const slices = raw.prepare("SELECT id, request_id, count, ends, value FROM arg_slices").all() as {
    id: number;
    request_id: number;
    count: number;
    ends: Buffer;
    value: Buffer;
  }[];
  for (const slice of slices) {
    for (let i = 0, start = 0; i < slice.count; i++) {
      const end = slice.ends.readUInt32LE(i * 4);
      insert.run(slice.id + i, slice.request_id, slice.value.subarray(start, end));
      start = end;
    }
  }
  raw.exec("DROP TABLE arg_slices; PRAGMA user_version = 3;");
}

const sha256 = async (path: string) =>
  createHash("sha256")
    .update(await readFile(path))
    .digest("hex");

it("makes a new file a Sheepdog database of the latest version, in WAL mode", async () => {
  const store = sqliteStore({ dbfile: file });
  await store.listRequests();
  expect(header(file)).toEqual({ applicationId: APPLICATION_ID, version: migrations.length });
  const db = new Database(file, { readonly: true });
  expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
  db.close();
  await store.close();
});

it("makes a new file's schema from one script, the same as the migrations make", async () => {
  expect(latestSchema.version).toBe(latest);
  const migrated = join(dir, "migrated.sqlite");
  const stores = [
    sqliteStore({ dbfile: file }),
    sqliteStoreWithMigrations({ dbfile: migrated }, migrations),
  ];
  for (const store of stores) {
    await store.createRequest({ func: utf8("f"), ns: utf8(""), args: [utf8("a")] });
    await store.close();
  }
  const schemaOf = (path: string) => {
    const db = new Database(path, { readonly: true });
    try {
      return db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name").all();
    } finally {
      db.close();
    }
  };
  expect(schemaOf(file).map((row) => (row as { name: string }).name)).toEqual([
    "arg_slices",
    "logs",
    "reports",
    "requests",
    "sqlite_sequence",
  ]);
  expect(schemaOf(file)).toEqual(schemaOf(migrated));
  expect(header(file)).toEqual(header(migrated));
});

it("initialises an empty (0-byte) file", async () => {
  await writeFile(file, "");
  const store = sqliteStore({ dbfile: file });
  expect(await store.listRequests()).toEqual([]);
  await store.close();
  expect(header(file).applicationId).toBe(APPLICATION_ID);
});

it("upgrades an older file, keeping its data", async () => {
  const old = sqliteStoreWithMigrations({ dbfile: file }, migrations);
  const { id } = await old.createRequest({
    func: utf8("f"),
    ns: utf8("ns"),
    args: [utf8("a0"), utf8("a1")],
  });
  await old.putResult(id, 1, utf8("r1"));
  await old.close();
  expect(header(file).version).toBe(latest);

  const upgraded = sqliteStoreWithMigrations({ dbfile: file }, [...migrations, addNotes]);
  expect(await upgraded.counts(id)).toEqual({ tasks: 2, results: 1, errors: 0 });
  expect(header(file)).toEqual({ applicationId: APPLICATION_ID, version: latest + 1 });
  const results = await upgraded.getResults(id);
  expect(results.map((r) => r.result && new TextDecoder().decode(r.result))).toEqual([null, "r1"]);
  expect((await upgraded.createRequest({ func: utf8("g"), ns: utf8(""), args: [] })).id).toBe(
    id + 1,
  );
  await upgraded.close();

  const db = new Database(file, { readonly: true });
  expect(db.prepare("SELECT note FROM requests ORDER BY id").pluck().all()).toEqual([
    "none",
    "none",
  ]);
  db.close();
});

it("brings a version 1 file to version 2: its errors stay final, new ones can be provisional", async () => {
  const old = sqliteStore({ dbfile: file });
  const { id } = await old.createRequest({
    func: utf8("f"),
    ns: utf8(""),
    args: [utf8("a0"), utf8("a1")],
  });
  await old.putError(id, 0, "Traceback: real");
  await old.close();
  // Back to the file version 1 wrote: reports without the provisional column, and no facts.
  const raw = new Database(file);
  toVersion3(raw);
  raw.exec(
    "DROP TABLE facts; ALTER TABLE reports DROP COLUMN provisional; PRAGMA user_version = 1;",
  );
  raw.close();
  expect(header(file).version).toBe(1);

  const store = sqliteStore({ dbfile: file });
  expect((await store.getErrors(id)).map((e) => [e.error, e.provisional])).toEqual([
    ["Traceback: real", undefined],
  ]);
  expect(await store.putResult(id, 0, utf8("r0"))).toBe(false);
  expect(await store.putError(id, 1, "died", { provisional: true })).toBe(true);
  expect(await store.putResult(id, 1, utf8("r1"))).toBe(true);
  expect(await store.counts(id)).toEqual({ tasks: 2, results: 1, errors: 1 });
  expect(header(file).version).toBe(latest);
  await store.close();
});

it("brings a version 2 file to version 3: its reports have no facts, new ones can", async () => {
  const old = sqliteStore({ dbfile: file });
  const { id } = await old.createRequest({
    func: utf8("f"),
    ns: utf8(""),
    args: [utf8("a0"), utf8("a1"), utf8("a2")],
  });
  await old.putResult(id, 0, utf8("r0"));
  await old.putError(id, 1, "died", { provisional: true });
  await old.close();
  // Back to the file version 2 wrote: no facts table.
  const raw = new Database(file);
  toVersion3(raw);
  raw.exec("DROP TABLE facts; PRAGMA user_version = 2;");
  raw.close();

  const store = sqliteStore({ dbfile: file });
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
  expect(header(file).version).toBe(latest);
  await store.close();
});

it("brings a version 3 file to version 4: its arguments move into slices, each read back the same", async () => {
  // Arguments of many sizes, so that slices close on their count and on their bytes, and one
  // argument larger than a slice's bytes; two requests, so that slices end at a request's end.
  const sizes = (i: number) => (i === 700 ? 300_000 : (i * 37) % 500);
  const argsOf = (n: number, tag: number) =>
    Array.from({ length: n }, (_, i) => new Uint8Array(sizes(i)).fill((i + tag) % 251));
  const first = argsOf(2500, 0);
  const second = argsOf(3, 7);
  const old = sqliteStore({ dbfile: file });
  const a = await old.createRequest({ func: utf8("f"), ns: utf8(""), args: first });
  const empty = await old.createRequest({ func: utf8("g"), ns: utf8(""), args: [] });
  const b = await old.createRequest({ func: utf8("h"), ns: utf8(""), args: second });
  await old.putResult(a.id, 1030, utf8("r1030"));
  await old.putError(a.id, 700, "died", { provisional: true });
  await old.putError(b.id, 2, "e2");
  await old.close();
  const raw = new Database(file);
  toVersion3(raw);
  expect(raw.prepare("SELECT count(*) FROM args").pluck().get()).toBe(2503);
  raw.close();

  // As hex: comparing thousands of byte arrays element by element takes seconds.
  const hex = (list: (Uint8Array | undefined)[]) =>
    list.map((x) => x && Buffer.from(x).toString("hex"));
  const store = sqliteStore({ dbfile: file });
  expect(hex(await store.getArgs(a.id, 0, 2500))).toEqual(hex(first));
  expect(hex(await store.getArgs(a.id, 1023, 3))).toEqual(hex(first.slice(1023, 1026)));
  expect(await store.getArgs(b.id, 0, 3)).toEqual(second);
  expect(await store.counts(empty.id)).toEqual({ tasks: 0, results: 0, errors: 0 });
  const results = await store.getResults(a.id);
  expect(hex(results.map((r) => r.args))).toEqual(hex(first));
  expect(results[1030]?.result).toEqual(utf8("r1030"));
  expect(
    (await store.getErrors(a.id)).map((e) => [e.index, hex([e.args])[0], e.provisional]),
  ).toEqual([[700, hex([first[700]])[0], true]]);
  expect((await store.getErrors(b.id)).map((e) => [e.index, e.args])).toEqual([[2, second[2]]]);
  const next = await store.createRequest({ func: utf8("i"), ns: utf8(""), args: [utf8("x")] });
  expect(await store.getArgs(next.id, 0)).toEqual([utf8("x")]);
  expect(await store.getArgs(b.id, 0, 3)).toEqual(second);
  await store.close();

  const db = new Database(file, { readonly: true });
  expect(header(file).version).toBe(latest);
  expect(db.prepare("SELECT name FROM sqlite_schema WHERE name = 'args'").all()).toEqual([]);
  // 2,500 arguments: at least three slices by count, more where the bytes filled one first.
  const slices = db.prepare("SELECT request_id, count FROM arg_slices ORDER BY id").all() as {
    request_id: number;
    count: number;
  }[];
  expect(slices.filter((x) => x.request_id === a.id).length).toBeGreaterThan(3);
  expect(slices.filter((x) => x.request_id === b.id)).toEqual([{ request_id: b.id, count: 3 }]);
  db.close();
});

it("brings a version 4 file to version 5: each report's facts and log are read back the same", async () => {
  const old = sqliteStore({ dbfile: file });
  const { id } = await old.createRequest({
    func: utf8("f"),
    ns: utf8(""),
    args: [utf8("a0"), utf8("a1"), utf8("a2"), utf8("a3"), utf8("a4")],
  });
  const facts = { startedAt: 1_796_000_000_123, endedAt: 1_796_000_000_456, host: "n1" };
  await old.putReports(id, [
    { index: 0, kind: "result", value: utf8("r0"), facts: { ...facts, attempt: 2 } },
    { index: 1, kind: "result", value: utf8("r1"), facts: { peakMemoryBytes: 7, log: "out\n" } },
    { index: 2, kind: "error", value: "e2", facts: { log: "only a log" } },
    { index: 3, kind: "result", value: utf8("r3") },
    { index: 4, kind: "error", value: "died", provisional: true, facts: { host: "n2" } },
  ]);
  const before = {
    facts: await old.getTaskFacts(id),
    logs: await old.getLogs(id),
    results: await old.getResults(id),
    errors: await old.getErrors(id),
  };
  await old.close();
  const raw = new Database(file);
  toVersion4(raw);
  expect(raw.prepare("SELECT count(*) FROM facts").pluck().get()).toBe(4);
  raw.close();
  expect(header(file).version).toBe(4);

  const store = sqliteStore({ dbfile: file });
  expect({
    facts: await store.getTaskFacts(id),
    logs: await store.getLogs(id),
    results: await store.getResults(id),
    errors: await store.getErrors(id),
  }).toStrictEqual(before);
  expect(before.logs).toEqual([
    { index: 1, log: "out\n" },
    { index: 2, log: "only a log" },
  ]);
  // The provisional error's facts and log go with it when a real report replaces it.
  expect(await store.putReports(id, [{ index: 4, kind: "result", value: utf8("r4") }])).toEqual([
    true,
  ]);
  expect((await store.getTaskFacts(id, 4))[0]).toStrictEqual({ kind: "result", hasLog: false });
  await store.close();

  const db = new Database(file, { readonly: true });
  expect(header(file).version).toBe(latest);
  expect(db.prepare("SELECT name FROM sqlite_schema WHERE name = 'facts'").all()).toEqual([]);
  db.close();
});

it("migrates once when two stores open an older file at the same moment", async () => {
  const old = sqliteStoreWithMigrations({ dbfile: file }, migrations);
  await old.listRequests();
  await old.close();
  // addNotes fails if run twice (the column exists): the second store must see the first's
  // work. The pause holds the first store's transaction open while the second one looks.
  const slowNotes: Migration = {
    ...addNotes,
    async up(db) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      await addNotes.up(db);
    },
  };
  const a = sqliteStoreWithMigrations({ dbfile: file }, [...migrations, slowNotes]);
  const b = sqliteStoreWithMigrations({ dbfile: file }, [...migrations, slowNotes]);
  expect(await Promise.all([a.listRequests(), b.listRequests()])).toEqual([[], []]);
  expect(header(file).version).toBe(latest + 1);
  await a.close();
  await b.close();
});

it("rolls back a failed migration whole, and retries it on the next call", async () => {
  const old = sqliteStoreWithMigrations({ dbfile: file }, migrations);
  await old.listRequests();
  await old.close();
  let fail = true;
  const flaky: Migration = {
    version: latest + 1,
    name: "flaky",
    async up(db) {
      await db.schema.createTable("half_done").addColumn("x", "integer").execute();
      if (fail) throw new Error("disk gremlins");
    },
  };
  const store = sqliteStoreWithMigrations({ dbfile: file }, [...migrations, flaky]);
  const error = await store.listRequests().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(SheepdogError.isInstance(error) && error.message).toContain("disk gremlins");
  const db = new Database(file, { readonly: true });
  expect(db.prepare("SELECT name FROM sqlite_schema WHERE name = 'half_done'").all()).toEqual([]);
  db.close();
  expect(header(file).version).toBe(latest);
  fail = false;
  expect(await store.listRequests()).toEqual([]);
  expect(header(file).version).toBe(latest + 1);
  await store.close();
});

it("refuses a file written by a newer Sheepdog with STORE_VERSION, leaving it untouched", async () => {
  const store = sqliteStore({ dbfile: file });
  await store.listRequests();
  await store.close();
  const db = new Database(file);
  db.pragma(`user_version = ${migrations.length + 1}`);
  db.pragma("journal_mode = DELETE");
  db.close();
  const before = await sha256(file);

  const newer = sqliteStore({ dbfile: file });
  const error = await newer.listRequests().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(SheepdogError.isInstance(error) && error.code).toBe("STORE_VERSION");
  expect((error as Error).message).toBe(
    `[sheepdog] [store-sqlite] ${file} has schema version ${migrations.length + 1}, written by a newer Sheepdog; this @sheepdog/store-sqlite reads versions up to ${migrations.length}. Upgrade @sheepdog/store-sqlite, or use another dbfile.`,
  );
  await newer.close();
  expect(await sha256(file)).toBe(before);
});
