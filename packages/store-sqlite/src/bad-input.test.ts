import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { SheepdogError } from "@sheepdog/contracts";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sqliteStore } from "./sqlite-store.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "sheepdog-bad-input-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function failure(promise: Promise<unknown>): Promise<SheepdogError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!SheepdogError.isInstance(error))
    throw new Error(`expected a SheepdogError, got ${String(error)}`);
  return error;
}

const sha256 = async (file: string) =>
  createHash("sha256")
    .update(await readFile(file))
    .digest("hex");

describe("a dbfile that cannot be a database", () => {
  it("refuses a directory, naming it", async () => {
    const store = sqliteStore({ dbfile: dir });
    const error = await failure(store.listRequests());
    expect(error.code).toBe("STORE_IO");
    expect(error.message).toContain(`${dir} is a directory`);
  });

  it("refuses a path whose directory does not exist, and retries the open on the next call", async () => {
    const file = join(dir, "missing", "sheepdog.sqlite");
    const store = sqliteStore({ dbfile: file });
    const error = await failure(store.listRequests());
    expect(error.code).toBe("STORE_IO");
    expect(error.message).toContain(file);
    expect(error.message).toContain("does not exist");
    // Lazy init is retried after a failure.
    await mkdir(join(dir, "missing"));
    expect(await store.listRequests()).toEqual([]);
    await store.close();
  });

  it("refuses a file that is not a database, leaving it untouched", async () => {
    const file = join(dir, "notes.txt");
    await writeFile(file, "These are my notes, not a database. ".repeat(200));
    const before = await sha256(file);
    const error = await failure(sqliteStore({ dbfile: file }).listRequests());
    expect(error.code).toBe("STORE_CORRUPT");
    expect(error.message).toContain(file);
    expect(await sha256(file)).toBe(before);
  });

  it("refuses another application's SQLite database, leaving it untouched", async () => {
    const file = join(dir, "other.sqlite");
    const other = new Database(file);
    other.exec("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ada')");
    other.close();
    const before = await sha256(file);
    const error = await failure(sqliteStore({ dbfile: file }).listRequests());
    expect(error.code).toBe("STORE_CORRUPT");
    expect(error.message).toContain(`${file} is an SQLite database, but not a Sheepdog one`);
    expect(await sha256(file)).toBe(before);
    const check = new Database(file);
    expect(check.pragma("journal_mode", { simple: true })).toBe("delete");
    check.close();
  });
});

describe("a damaged Sheepdog database", () => {
  async function filledFile(): Promise<string> {
    const file = join(dir, "sheepdog.sqlite");
    const store = sqliteStore({ dbfile: file });
    const { id } = await store.createRequest({
      func: new Uint8Array(10),
      ns: new Uint8Array(10),
      args: Array.from({ length: 2000 }, (_, i) => new TextEncoder().encode(`argument ${i}`)),
    });
    await store.putResult(id, 0, new Uint8Array(100));
    await store.close();
    return file;
  }

  it("reports a damaged header as STORE_CORRUPT and leaves the file as it is", async () => {
    const file = await filledFile();
    const bytes = await readFile(file);
    bytes.write("not sqlite at all", 0, "latin1");
    await writeFile(file, bytes);
    const before = await sha256(file);
    const store = sqliteStore({ dbfile: file });
    const error = await failure(store.listRequests());
    expect(error.code).toBe("STORE_CORRUPT");
    expect(error.message).toContain(file);
    expect(error.message).toContain("left untouched");
    await store.close();
    expect(await sha256(file)).toBe(before);
  });

  it("reports damaged pages as STORE_CORRUPT and leaves the file as it is", async () => {
    const file = await filledFile();
    const bytes = await readFile(file);
    const pageSize = bytes.readUInt16BE(16);
    // Everything after the first page (the header and the schema) becomes noise.
    for (let i = pageSize; i < bytes.length; i += 1) bytes[i] = (i * 7919) & 0xff;
    await writeFile(file, bytes);
    const before = await sha256(file);
    const store = sqliteStore({ dbfile: file });
    const error = await failure(store.listRequests());
    expect(error.code).toBe("STORE_CORRUPT");
    expect(error.message).toContain(file);
    await store.close();
    expect(await sha256(file)).toBe(before);
    expect((await stat(file)).size).toBe(bytes.length);
  });
});

describe("a dbfile this user cannot write", () => {
  const opener = fileURLToPath(new URL("./__fixtures__/open.mjs", import.meta.url));
  const asRoot = process.getuid?.() === 0;

  /** Opens `file` in a process of an unprivileged user (root may write anything). */
  async function openAsUser(file: string): Promise<{ code?: string; message?: string }> {
    const options = asRoot ? { uid: 65534, gid: 65534 } : {};
    const { stdout } = await promisify(execFile)(process.execPath, [opener, file], options);
    return JSON.parse(stdout) as { code?: string; message?: string };
  }

  it("reads a file it cannot write (read-only), and refuses one it cannot read, naming it", async () => {
    await chmod(dir, 0o777);
    const file = join(dir, "readonly.sqlite");
    const store = sqliteStore({ dbfile: file });
    await store.listRequests();
    await store.close();
    await chmod(file, 0o444);
    expect(await openAsUser(file)).toEqual({ ok: true });
    await chmod(file, 0o200);
    const outcome = await openAsUser(file);
    expect(outcome.code).toBe("STORE_IO");
    expect(outcome.message).toContain(`${file} cannot be read: permission denied`);
  });

  it("refuses to create a file in a directory it cannot write, naming it", async () => {
    const locked = join(dir, "locked");
    await mkdir(locked);
    await chmod(dir, 0o755);
    await chmod(locked, 0o555);
    const file = join(locked, "sheepdog.sqlite");
    const outcome = await openAsUser(file);
    expect(outcome.code).toBe("STORE_IO");
    expect(outcome.message).toContain(
      `${file} cannot be created: the directory ${locked} is not writable`,
    );
  });
});
