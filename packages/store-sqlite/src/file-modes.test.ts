import { spawnSync } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canSwitchUsers } from "@sheepdog/testcluster";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sqliteStore } from "./sqlite-store.js";

// On a shared machine the dbfile holds every argument and result: a new one, and the -wal and
// -shm files SQLite makes beside it, are readable by their owner alone.

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "sheepdog-modes-"));
  // Anyone may enter the directory, so that only the files' own modes protect them.
  await chmod(dir, 0o755);
  file = join(dir, "sheepdog.sqlite");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const utf8 = (text: string) => new TextEncoder().encode(text);
const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

/** Opens a store on `file` and writes to it, so that its -wal and -shm exist. */
async function storeWithWal(): Promise<ReturnType<typeof sqliteStore>> {
  const store = sqliteStore({ dbfile: file });
  const { id } = await store.createRequest({
    func: utf8("def f(x): return x"),
    ns: utf8("ns"),
    args: [utf8("a secret argument")],
  });
  await store.putResult(id, 0, utf8("a secret result"));
  return store;
}

describe.each([
  { umask: 0o022, name: "022" },
  { umask: 0o000, name: "000" },
])("under umask $name", ({ umask }) => {
  let previous: number;
  beforeEach(() => {
    previous = process.umask(umask);
  });
  afterEach(() => {
    process.umask(previous);
  });

  it.each([
    ["the new dbfile", ""],
    ["its -wal", "-wal"],
    ["its -shm", "-shm"],
  ])("creates %s with mode 0600", async (_name, suffix) => {
    await using _store = await storeWithWal();
    expect((await modeOf(`${file}${suffix}`)).toString(8)).toBe("600");
  });
});

it("leaves an existing dbfile's mode as its owner set it (and SQLite's -wal follows it)", async () => {
  const first = sqliteStore({ dbfile: file });
  await first.listRequests();
  await first.close();
  await chmod(file, 0o640);
  await using _store = await storeWithWal();
  expect((await modeOf(file)).toString(8)).toBe("640");
  expect((await modeOf(`${file}-wal`)).toString(8)).toBe("640");
});

it("leaves an existing empty file's mode as its owner set it", async () => {
  await writeFile(file, "");
  await chmod(file, 0o644);
  await using _store = await storeWithWal();
  expect((await modeOf(file)).toString(8)).toBe("644");
});

/** `cat path` as the unprivileged user nobody (runuser needs root). */
function catAsNobody(path: string): { status: number | null; stdout: string; stderr: string } {
  const { status, stdout, stderr } = spawnSync("runuser", ["-u", "nobody", "--", "cat", path], {
    encoding: "utf8",
  });
  return { status, stdout, stderr };
}

it.skipIf(!canSwitchUsers)(
  "another user (nobody) cannot read the dbfile, its -wal nor its -shm while a store has them open (runs as root only: switching users needs root)",
  async () => {
    await using _store = await storeWithWal();
    const wal = await readFile(`${file}-wal`);
    expect(wal.includes("a secret result"), "the -wal holds the data").toBe(true);
    // The control: nobody can reach the directory and read a world-readable file in it.
    const control = join(dir, "readable.txt");
    await writeFile(control, "anyone may read this");
    await chmod(control, 0o644);
    expect(catAsNobody(control)).toEqual({ status: 0, stdout: "anyone may read this", stderr: "" });
    for (const path of [file, `${file}-wal`, `${file}-shm`]) {
      const attempt = catAsNobody(path);
      expect(attempt.status, path).not.toBe(0);
      expect(attempt.stdout, path).toBe("");
      expect(attempt.stderr, path).toContain("Permission denied");
    }
  },
);
