import { chmod, chown, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { asNobody, canSwitchUsers } from "@sheepdog/testcluster";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sqliteStore } from "./sqlite-store.js";

// A dbfile that can be read but not written (a colleague's results, a file made read-only to
// keep it) can still be looked up. File modes do not stop root, so the reader is nobody.

const built = join(import.meta.dirname, "../dist/index.js");
const utf8 = (text: string) => new TextEncoder().encode(text);

/** What a store on `file`, opened by nobody, reads and whether it can write. */
async function readAsNobody(file: string) {
  const script = `
import { sqliteStore } from ${JSON.stringify(built)};
const store = sqliteStore({ dbfile: ${JSON.stringify(file)} });
const out = {};
try {
  out.counts = await store.counts(1);
  out.result = new TextDecoder().decode((await store.getResults(1))[0].result);
  out.write = await store.updateMeta(1, { note: 1 }).then(() => "written", (e) => e.code + ": " + e.message);
} catch (error) {
  out.error = error.code + ": " + error.message;
}
await store.close();
console.log(JSON.stringify(out));
`;
  const run = await asNobody(process.execPath, ["--input-type=module", "-e", script]);
  expect(run.stderr).toBe("");
  return JSON.parse(run.stdout);
}

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "sheepdog-readonly-"));
  await chmod(dir, 0o755);
  file = join(dir, "sheepdog.sqlite");
  const store = sqliteStore({ dbfile: file });
  const { id } = await store.createRequest({ func: utf8("f"), ns: utf8("ns"), args: [utf8("a")] });
  await store.putResult(id, 0, utf8("the result"));
  await store.close();
  // nobody owns the file, mode 0400: it can read it and not write it.
  await chown(file, 65534, 65534);
  await chmod(file, 0o400);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!canSwitchUsers)(
  "a dbfile that cannot be written (as nobody: runs as root only)",
  () => {
    it("is opened read-only: its requests are read, and a write is STORE_IO", async () => {
      // The directory is nobody's, so SQLite can make the -shm file it needs to read.
      await chown(dir, 65534, 65534);
      const out = await readAsNobody(file);
      expect(out.error).toBeUndefined();
      expect(out.counts).toEqual({ tasks: 1, results: 1, errors: 0 });
      expect(out.result).toBe("the result");
      expect(out.write).toMatch(/^STORE_IO: .*sheepdog\.sqlite cannot be written/);
    });

    it("in a directory that cannot be written either, says so and how to read it", async () => {
      const out = await readAsNobody(file);
      expect(out.error).toMatch(
        /^STORE_IO: .*sheepdog\.sqlite can be read but not written, and its directory .* cannot be written either: SQLite needs to create .*-shm .*Copy the dbfile/,
      );
      expect((await readdir(dir)).sort()).toEqual(["sheepdog.sqlite"]);
    });
  },
);
