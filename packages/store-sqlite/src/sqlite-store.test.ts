import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Store, StoreReport } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import { describeStoreContract } from "@sheepdog/contracts/testing";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { SMALL_VALUE_BYTES } from "./internal/small-values.js";
import type { SqliteDatabase } from "./sqlite-database.js";
import { type SqliteStoreOptions, sqliteStore } from "./sqlite-store.js";

describeStoreContract("sqlite", (ctx) => sqliteStore({ dbfile: join(ctx.dir, "sheepdog.sqlite") }));

// The same contract with a database passed in, which close() leaves open for its owner.
const injected: Database.Database[] = [];
afterAll(() => {
  for (const db of injected) db.close();
});
describeStoreContract(
  "sqlite, database passed in",
  (ctx) => {
    const db = new Database(join(ctx.dir, "injected.sqlite"));
    injected.push(db);
    return sqliteStore({ database: db });
  },
  { manyTasks: 10_000, largeValueBytes: 1024 * 1024 },
);

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "sheepdog-sqlite-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const utf8 = (text: string) => new TextEncoder().encode(text);

/** A request of `tasks` one-argument tasks ("a0", "a1", ...). */
function requestOf(store: Store, tasks: number) {
  return store.createRequest({
    func: utf8("f"),
    ns: utf8("n"),
    args: Array.from({ length: tasks }, (_, i) => utf8(`a${i}`)),
  });
}

async function failure(promise: Promise<unknown>): Promise<SheepdogError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!SheepdogError.isInstance(error))
    throw new Error(`expected a SheepdogError, got ${String(error)}`);
  return error;
}

describe("sqliteStore options", () => {
  const attempt = (options: unknown) => {
    try {
      sqliteStore(options as SqliteStoreOptions);
    } catch (error) {
      return SheepdogError.isInstance(error) ? `${error.code}: ${error.message}` : String(error);
    }
    return "accepted";
  };
  const prefix = "CONFIG_INVALID: [sheepdog] [store-sqlite] ";

  it("take a path as dbfile or an open database as database, one of them, naming both when not", () => {
    const db = new Database(":memory:");
    expect(attempt({ dbfile: "x.sqlite" })).toBe("accepted");
    expect(attempt({ database: db })).toBe("accepted");
    expect(attempt({ dbfile: "x.sqlite", database: undefined })).toBe("accepted");
    const needsOne = `${prefix}sqliteStore needs dbfile (a file path) or database (an open better-sqlite3 Database): sqliteStore({ dbfile: "./sheepdog.sqlite" }).`;
    expect(attempt({})).toBe(needsOne);
    expect(attempt({ busyTimeout: 10 })).toBe(needsOne);
    expect(attempt(undefined)).toBe(needsOne);
    expect(attempt({ dbfile: "x.sqlite", database: db })).toBe(
      `${prefix}sqliteStore got both dbfile and database. Pass dbfile for a file path, or database for an open better-sqlite3 Database, not both.`,
    );
    expect(attempt({ database: "x.sqlite" })).toBe(
      `${prefix}database must be an open better-sqlite3 Database (an object with prepare()), not a string. For a file path, pass dbfile instead: sqliteStore({ dbfile: "./sheepdog.sqlite" }).`,
    );
    expect(attempt({ dbfile: db })).toBe(
      `${prefix}dbfile must be a file path (a non-empty string), not an object. For an open better-sqlite3 Database, pass database instead.`,
    );
    expect(attempt({ dbfile: "" })).toContain("not an empty string.");
    expect(attempt({ database: null })).toContain("not null.");
    db.close();
  });

  it("refuse unknown or malformed options with CONFIG_INVALID, suggesting the right name", () => {
    expect(attempt({ path: "x.sqlite" })).toBe(
      `${prefix}Unknown option "path" for sqliteStore. Did you mean "dbfile"?`,
    );
    expect(attempt({ dbFile: "x.sqlite" })).toContain('Did you mean "dbfile"?');
    expect(attempt({ dbfile: "x", busyTimout: 5 })).toContain('Did you mean "busyTimeout"?');
    expect(attempt({ dbfile: "x", colour: "red" })).toContain(
      "Known options: dbfile, database, busyTimeout.",
    );
    expect(attempt({ dbfile: 42 })).toContain("CONFIG_INVALID");
    expect(attempt({ dbfile: "x", busyTimeout: -1 })).toContain("CONFIG_INVALID");
    expect(attempt({ dbfile: "x", busyTimeout: Number.NaN })).toContain("CONFIG_INVALID");
    expect(attempt({ dbfile: "x", busyTimeout: 0 })).toBe("accepted");
  });
});

describe("sqliteStore lifecycle", () => {
  it("touches nothing on disk before its first use", async () => {
    const file = join(dir, "lazy.sqlite");
    const store = sqliteStore({ dbfile: file });
    expect(store.file).toBe(file);
    expect(existsSync(file)).toBe(false);
    await store.listRequests();
    expect(existsSync(file)).toBe(true);
    await store.close();
  });

  it("closes with await using", async () => {
    const file = join(dir, "using.sqlite");
    let escaped: ReturnType<typeof sqliteStore> | undefined;
    {
      await using store = sqliteStore({ dbfile: file });
      await store.listRequests();
      escaped = store;
    }
    expect((await failure(escaped.listRequests())).code).toBe("CLOSED");
  });

  it("leaves a database that was passed in open, and names its file", async () => {
    const file = join(dir, "mine.sqlite");
    const db = new Database(file);
    const store = sqliteStore({ database: db });
    expect(store.file).toBe(file);
    const { id } = await store.createRequest({ func: utf8("f"), ns: utf8("n"), args: [utf8("a")] });
    await store.close();
    expect(db.open).toBe(true);
    expect(db.prepare("SELECT tasks FROM requests WHERE id = ?").pluck().get(id)).toBe(1);
    db.close();
  });

  it("works on a private in-memory database", async () => {
    await using store = sqliteStore({ dbfile: ":memory:" });
    const { id } = await store.createRequest({ func: utf8("f"), ns: utf8("n"), args: [utf8("a")] });
    expect(await store.putResult(id, 0, utf8("r"))).toBe(true);
    expect(await store.counts(id)).toEqual({ tasks: 1, results: 1, errors: 0 });
  });
});

describe("sqliteStore values", () => {
  it("keeps empty values and values around the small-value size exactly", async () => {
    await using store = sqliteStore({ dbfile: join(dir, "sizes.sqlite") });
    const sizes = [0, 1, SMALL_VALUE_BYTES - 1, SMALL_VALUE_BYTES, SMALL_VALUE_BYTES + 1, 300_000];
    const make = (size: number, seed: number) =>
      Uint8Array.from({ length: size }, (_, i) => (i * 31 + seed) & 0xff);
    const { id } = await store.createRequest({
      func: new Uint8Array(0),
      ns: new Uint8Array(0),
      args: sizes.map((size) => make(size, 1)),
    });
    for (const [i, size] of sizes.entries()) await store.putResult(id, i, make(size, 2));
    const results = await store.getResults(id);
    for (const [i, size] of sizes.entries()) {
      expect([...(results[i]?.args ?? [])]).toEqual([...make(size, 1)]);
      expect([...(results[i]?.result ?? [null])]).toEqual([...make(size, 2)]);
    }
    expect((await store.getRequest(id)).func.byteLength).toBe(0);
  });

  it("reads many values at once (packed) exactly as one by one: sizes, errors, gaps", {
    timeout: 30_000,
  }, async () => {
    await using store = sqliteStore({ dbfile: join(dir, "packed.sqlite") });
    const sizes = [19, 0, 1, SMALL_VALUE_BYTES, SMALL_VALUE_BYTES + 1, 3000, 7];
    const make = (i: number, seed: number) =>
      Uint8Array.from(
        { length: sizes[i % sizes.length] as number },
        (_, j) => (i + j * seed) & 0xff,
      );
    const tasks = 5000;
    const { id } = await store.createRequest({
      func: utf8("f"),
      ns: utf8("n"),
      args: Array.from({ length: tasks }, (_, i) => make(i, 3)),
    });
    // Results for most tasks, errors for every 11th, nothing for every 13th.
    const reports: StoreReport[] = [];
    for (let i = 0; i < tasks; i++) {
      if (i % 13 === 0) continue;
      reports.push(
        i % 11 === 0
          ? { index: i, kind: "error", value: `error ${i}` }
          : { index: i, kind: "result", value: make(i, 5) },
      );
    }
    await store.putReports(id, reports);
    const same = (a: Uint8Array | null | undefined, b: Uint8Array) =>
      a instanceof Uint8Array && Buffer.from(a).equals(b);
    const all = await store.getArgs(id, 0, tasks);
    const some = await store.getArgs(id, 37, 4200);
    expect(all).toHaveLength(tasks);
    expect(some).toHaveLength(4200);
    const wrong: string[] = [];
    for (let i = 0; i < tasks; i++) if (!same(all[i], make(i, 3))) wrong.push(`arg ${i}`);
    for (let i = 0; i < 4200; i++) if (!same(some[i], make(37 + i, 3))) wrong.push(`arg ${37 + i}`);
    for (const i of [0, 4, 5, 4095, 4096, 4999]) {
      if (!same((await store.getArgs(id, i, 1))[0], make(i, 3))) wrong.push(`one arg ${i}`);
    }
    const rows = await store.getResults(id);
    for (let i = 0; i < tasks; i++) {
      const row = rows[i];
      if (row?.index !== i || !same(row.args, make(i, 3))) wrong.push(`row ${i}`);
      const none = i % 13 === 0 || i % 11 === 0;
      if (none ? row?.result !== null : !same(row?.result, make(i, 5))) wrong.push(`result ${i}`);
    }
    const ranged = [
      ...(await store.getResultRange(id, 0, 2500)),
      ...(await store.getResultRange(id, 2500, 2500)),
    ];
    for (let i = 0; i < tasks; i++) {
      const expected = rows[i]?.result ?? null;
      const got = ranged[i];
      if (expected === null ? got !== null : !same(got, expected)) wrong.push(`range ${i}`);
    }
    expect(wrong).toEqual([]);
  });

  it("reads results row by row where the database cannot pack them, the same as packed", async () => {
    // A database without group_concat (not SQLite's full SQL): the packed reads cannot be
    // prepared, and every result is read row by row.
    const file = join(dir, "unpacked.sqlite");
    const db = new Database(file);
    const database: SqliteDatabase = {
      name: db.name,
      close: () => db.close(),
      prepare(sql) {
        if (sql.includes("group_concat")) throw new Error("no such function: group_concat");
        return db.prepare(sql);
      },
    };
    const sizes = [0, 5, SMALL_VALUE_BYTES + 1, 3000];
    const make = (i: number) => new Uint8Array(sizes[i % sizes.length] as number).fill(i % 251);
    const reports: StoreReport[] = [];
    for (let i = 0; i < 2500; i++) {
      if (i % 7 === 0) continue;
      reports.push(
        i % 5 === 0
          ? { index: i, kind: "error", value: `error ${i}` }
          : { index: i, kind: "result", value: make(i) },
      );
    }
    const hex = (values: (Uint8Array | null | undefined)[]) =>
      values.map((v) => (v ? Buffer.from(v).toString("hex") : v));
    const answers = async (store: Store, id: number) => {
      const rows = await store.getResults(id);
      return {
        results: hex(rows.map((r) => r.result)),
        args: hex(rows.map((r) => r.args)),
        range: hex(await (store.getResultRange?.(id, 100, 2000) ?? [])),
      };
    };
    const args = Array.from({ length: 2500 }, (_, i) => make(i + 1));
    const unpacked = sqliteStore({ database });
    const packed = sqliteStore({ dbfile: join(dir, "packed-too.sqlite") });
    try {
      const a = await unpacked.createRequest({ func: utf8("f"), ns: utf8(""), args });
      const b = await packed.createRequest({ func: utf8("f"), ns: utf8(""), args });
      await unpacked.putReports(a.id, reports);
      await packed.putReports(b.id, reports);
      const fromRows = await answers(unpacked, a.id);
      expect(fromRows.results.filter((r) => r !== null)).toHaveLength(
        reports.filter((r) => r.kind === "result").length,
      );
      expect(fromRows).toEqual(await answers(packed, b.id));
    } finally {
      await unpacked.close();
      await packed.close();
      db.close();
    }
  });

  it("stores no request when reading its arguments fails", async () => {
    await using store = sqliteStore({ dbfile: join(dir, "rollback.sqlite") });
    function* args(): Generator<Uint8Array> {
      for (let i = 0; i < 1000; i += 1) yield utf8(`a${i}`);
      throw new Error("the generator broke");
    }
    const error = await failure(
      store.createRequest({ func: utf8("f"), ns: utf8("n"), args: args() }),
    );
    expect(error.code).toBe("INVALID_INPUT");
    expect(error.message).toContain("the generator broke");
    expect(await store.listRequests()).toEqual([]);
    const { id } = await store.createRequest({ func: utf8("f"), ns: utf8("n"), args: [utf8("a")] });
    expect(await store.counts(id)).toEqual({ tasks: 1, results: 0, errors: 0 });
  });

  it("tells onCreating the id and token before the arguments, and no reader sees the request before it resolves", async () => {
    await using store = sqliteStore({ dbfile: join(dir, "creating.sqlite") });
    await using reader = sqliteStore({ dbfile: join(dir, "creating.sqlite") });
    await reader.listRequests();
    const told: { id: number; token: string; argsRead: number }[] = [];
    let argsRead = 0;
    let readMidway: Promise<unknown> | undefined;
    function* args(): Generator<Uint8Array> {
      for (; argsRead < 120_000; argsRead += 1) {
        // Past the first turn the store gives the event loop (every 50,000 arguments).
        if (argsRead === 60_000) readMidway = reader.getRequest(told[0]?.id ?? -1).catch((e) => e);
        yield utf8(`a${argsRead}`);
      }
    }
    const created = await store.createRequest({
      func: utf8("f"),
      ns: utf8("n"),
      args: args(),
      onCreating: (early) => told.push({ ...early, argsRead }),
    });
    expect(told).toEqual([{ id: created.id, token: created.token, argsRead: 0 }]);
    expect(await readMidway).toMatchObject({ code: "REQUEST_NOT_FOUND" });
    expect((await reader.getRequest(created.id)).tasks).toBe(120_000);
    // One that throws is the caller's fault: the request is stored all the same.
    const second = await store.createRequest({
      func: utf8("f"),
      ns: utf8("n"),
      args: [utf8("a")],
      onCreating: () => {
        throw new Error("the caller's bug");
      },
    });
    expect(await store.counts(second.id)).toEqual({ tasks: 1, results: 0, errors: 0 });
    const error = await failure(
      store.createRequest({ func: utf8("f"), ns: utf8("n"), args: [], onCreating: 1 as never }),
    );
    expect(error.message).toContain("onCreating must be a function");
  });

  it("copies each argument as it is read, so a generator may reuse one buffer", async () => {
    await using store = sqliteStore({ dbfile: join(dir, "reuse.sqlite") });
    const buffer = new Uint8Array(4);
    function* args(): Generator<Uint8Array> {
      for (let i = 0; i < 500; i += 1) {
        new DataView(buffer.buffer).setUint32(0, i);
        yield buffer;
      }
    }
    const { id } = await store.createRequest({ func: utf8("f"), ns: utf8("n"), args: args() });
    const stored = await store.getArgs(id, 0, 500);
    const read = stored.map((a) => new DataView(a.buffer, a.byteOffset, a.byteLength).getUint32(0));
    expect(read).toEqual(Array.from({ length: 500 }, (_, i) => i));
  });

  it("reads arguments whose slice was damaged as STORE_CORRUPT, naming the file", async () => {
    const file = join(dir, "damaged.sqlite");
    const store = sqliteStore({ dbfile: file });
    const { id } = await requestOf(store, 3);
    await store.putError(id, 1, "died");
    await store.close();
    const raw = new Database(file);
    // The second argument's end now lies past the slice's bytes.
    const ends = Buffer.alloc(12);
    for (const [i, end] of [2, 400, 6].entries()) ends.writeUInt32LE(end, i * 4);
    raw.prepare("UPDATE arg_slices SET ends = ?").run(ends);
    raw.close();
    await using damaged = sqliteStore({ dbfile: file });
    for (const read of [damaged.getArgs(id, 0, 3), damaged.getResults(id), damaged.getErrors(id)]) {
      const error = await failure(read);
      expect(error.code).toBe("STORE_CORRUPT");
      expect(error.message).toContain(file);
    }
    expect(await damaged.getArgs(id, 0)).toEqual([utf8("a0")]);
  });
});

describe("sqliteStore and a busy file", () => {
  function holdWriteLock(file: string): Database.Database {
    const other = new Database(file);
    other.prepare("BEGIN IMMEDIATE").run();
    other.prepare("UPDATE requests SET meta = meta").run();
    return other;
  }

  it("waits for another connection's write without blocking the event loop", async () => {
    const file = join(dir, "busy.sqlite");
    await using store = sqliteStore({ dbfile: file });
    const { id } = await store.createRequest({ func: utf8("f"), ns: utf8("n"), args: [utf8("a")] });
    const other = holdWriteLock(file);
    let ticks = 0;
    const ticker = setInterval(() => {
      ticks += 1;
    }, 10);
    setTimeout(() => {
      other.prepare("COMMIT").run();
      other.close();
    }, 600);
    const started = Date.now();
    expect(await store.putResult(id, 0, utf8("r"))).toBe(true);
    clearInterval(ticker);
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
    // Blocked for 600 ms in SQLite's own wait, the ticker would not have run at all.
    expect(ticks).toBeGreaterThan(5);
    expect(await store.counts(id)).toEqual({ tasks: 1, results: 1, errors: 0 });
  });

  it("gives up after busyTimeout with a clear STORE_IO, then works once the lock is gone", async () => {
    const file = join(dir, "stuck.sqlite");
    await using store = sqliteStore({ dbfile: file, busyTimeout: 200 });
    const { id } = await store.createRequest({ func: utf8("f"), ns: utf8("n"), args: [utf8("a")] });
    const other = holdWriteLock(file);
    const error = await failure(store.putResult(id, 0, utf8("r")));
    expect(error.code).toBe("STORE_IO");
    expect(error.message).toContain(
      `${file} stayed locked by another connection for more than 200 ms`,
    );
    other.prepare("ROLLBACK").run();
    other.close();
    expect(await store.putResult(id, 0, utf8("r"))).toBe(true);
  });
});

describe("sqliteStore transactions", () => {
  /** A database (structurally typed, not better-sqlite3's class) that counts write transactions. */
  function counting(file: string): { database: SqliteDatabase; begins(): number; close(): void } {
    const db = new Database(file);
    let begins = 0;
    const database: SqliteDatabase = {
      name: db.name,
      close: () => db.close(),
      prepare(sql) {
        const statement = db.prepare(sql);
        if (sql !== "BEGIN IMMEDIATE") return statement;
        return {
          reader: statement.reader,
          all: (parameters) => statement.all(parameters),
          iterate: (parameters) => statement.iterate(parameters),
          run(parameters) {
            begins += 1;
            return statement.run(parameters);
          },
        };
      },
    };
    return { database, begins: () => begins, close: () => db.close() };
  }

  it("writes the reports that arrive in one turn of the event loop in one transaction", async () => {
    const db = counting(join(dir, "grouped.sqlite"));
    const store = sqliteStore({ database: db.database });
    const { id } = await requestOf(store, 300);
    const before = db.begins();
    const stored = await Promise.all([
      ...Array.from({ length: 100 }, (_, i) => store.putResult(id, i, utf8(`r${i}`))),
      ...Array.from({ length: 100 }, (_, i) => store.putError(id, 100 + i, `e${i}`)),
      store.putReports(id, [{ index: 200, kind: "result", value: utf8("batched") }]),
      store.putResult(id, 5000, utf8("a bad index fails alone")).catch((e: unknown) => e),
    ]);
    expect(db.begins() - before).toBe(1);
    expect(stored.slice(0, 200)).toEqual(Array(200).fill(true));
    expect(stored[200]).toEqual([true]);
    expect(SheepdogError.isInstance(stored[201]) && stored[201].code).toBe("TASK_NOT_FOUND");
    expect(await store.counts(id)).toEqual({ tasks: 300, results: 101, errors: 100 });

    // Awaited one by one, each report is its own transaction.
    const sequential = db.begins();
    for (let i = 201; i < 204; i += 1) await store.putResult(id, i, utf8(`r${i}`));
    expect(db.begins() - sequential).toBe(3);
    await store.close();
    db.close();
  });

  it("writes one turn's posts of a request together, as if one after the other", async () => {
    const db = counting(join(dir, "merged.sqlite"));
    const store = sqliteStore({ database: db.database });
    const { id } = await requestOf(store, 20);
    const facts = { host: "node1", attempt: 1 };
    const before = db.begins();
    const stored = await Promise.all([
      store.putReports(id, [
        { index: 0, kind: "result", value: utf8("first"), facts },
        { index: 1, kind: "error", value: "provisional", provisional: true },
      ]),
      store.putReports(id, [{ index: 0, kind: "result", value: utf8("second") }]),
      store
        .putReports(id, [{ index: 99, kind: "result", value: utf8("no such task") }])
        .catch((e: unknown) => e),
      store.putReports(id, [
        { index: 1, kind: "result", value: utf8("real"), facts: { host: "node2" } },
        { index: 2, kind: "error", value: "boom" },
        { index: 2, kind: "result", value: utf8("too late") },
      ]),
    ]);
    expect(db.begins() - before).toBe(1);
    expect(stored[0]).toEqual([true, true]);
    expect(stored[1]).toEqual([false]);
    expect(SheepdogError.isInstance(stored[2]) && stored[2].code).toBe("TASK_NOT_FOUND");
    expect(stored[3]).toEqual([true, true, false]);
    expect(await store.counts(id)).toEqual({ tasks: 20, results: 2, errors: 1 });
    const results = (await store.getResults(id)).slice(0, 3).map((row) => row.result);
    expect(results).toEqual([utf8("first"), utf8("real"), null]);
    const [f0, f1] = await store.getTaskFacts(id, 0, 2);
    expect(f0).toMatchObject({ kind: "result", host: "node1", attempt: 1 });
    expect(f1).toMatchObject({ kind: "result", host: "node2" });
    expect(f1).not.toHaveProperty("provisional");
    await store.close();
    db.close();
  });

  it("stores chunks of reports with facts, without, and mixed, each report as it came", async () => {
    const store = sqliteStore({ dbfile: join(dir, "chunks.sqlite") });
    const tasks = 450;
    const { id } = await store.createRequest({
      func: utf8("f"),
      ns: utf8("n"),
      args: Array.from({ length: tasks }, () => utf8("a")),
    });
    // Tasks 0-99 tell no facts, 100-199 all do, 200-299 some; 300-399 come after task 350
    // had a report, so their chunk is written one by one; 400-449 are the tail.
    const factsOf = (index: number) =>
      index < 100 || (index >= 200 && index < 300 && index % 3 !== 0)
        ? undefined
        : { startedAt: 1_000 + index, endedAt: 2_000 + index, host: `n${index % 7}`, attempt: 1 };
    const reportOf = (index: number): StoreReport => {
      const facts = factsOf(index);
      const report: StoreReport =
        index % 5 === 4
          ? { index, kind: "error", value: `e${index}` }
          : { index, kind: "result", value: utf8(`r${index}`) };
      return facts
        ? { ...report, facts: { ...facts, ...(index % 50 === 0 && { log: `l${index}` }) } }
        : report;
    };
    expect(await store.putReports(id, [reportOf(350)])).toEqual([true]);
    const all = Array.from({ length: tasks }, (_, index) => reportOf(index));
    const stored = await store.putReports(id, all);
    expect(stored).toEqual(all.map((report) => report.index !== 350));

    const results = await store.getResults(id);
    const errors = new Map((await store.getErrors(id)).map((e) => [e.index, e.error]));
    const facts = await store.getTaskFacts(id);
    for (const report of all) {
      const { index } = report;
      if (report.kind === "result") expect(results[index]?.result).toEqual(report.value);
      else expect([results[index]?.result, errors.get(index)]).toEqual([null, report.value]);
      const told = factsOf(index);
      expect(facts[index]).toStrictEqual({
        kind: report.kind,
        hasLog: told !== undefined && index % 50 === 0,
        ...(told && {
          startedAt: told.startedAt,
          endedAt: told.endedAt,
          host: told.host,
          attempt: 1,
        }),
      });
    }
    expect((await store.getLogs(id)).map((log) => log.index)).toEqual([100, 150, 300, 350, 400]);
    expect(await store.counts(id)).toEqual({ tasks, results: 360, errors: 90 });
    await store.close();
  });

  it("lets reports be written between the slices of a long read of facts", async () => {
    const store = sqliteStore({ dbfile: join(dir, "slices.sqlite") });
    const tasks = 60_000;
    const { id } = await store.createRequest({
      func: utf8("f"),
      ns: utf8("n"),
      args: Array.from({ length: tasks }, () => utf8("a")),
    });
    await store.putReports(
      id,
      Array.from({ length: tasks - 1 }, (_, index) => ({
        index,
        kind: "result" as const,
        value: utf8("r"),
        facts: { startedAt: 1, endedAt: 2 },
      })),
    );
    const order: string[] = [];
    const reading = store.getTaskFacts(id).then((entries) => {
      order.push("read");
      return entries;
    });
    const writing = store.putResult(id, tasks - 1, utf8("last")).then(() => order.push("write"));
    const [entries] = await Promise.all([reading, writing]);
    expect(order).toEqual(["write", "read"]);
    expect(entries.slice(0, 2)).toEqual([
      { kind: "result", hasLog: false, startedAt: 1, endedAt: 2 },
      { kind: "result", hasLog: false, startedAt: 1, endedAt: 2 },
    ]);
    // The write came after the first slice, and before the last was read.
    expect(entries.at(-1)).toEqual({ kind: "result", hasLog: false });
    await store.close();
  });
});
