import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

it("the built package loads in plain Node and exports sqliteStore", () => {
  // A separate process, importing the package by its name: vitest's loader forgives module
  // mistakes that Node does not.
  const out = execFileSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      'const m = await import("@sheepdog/store-sqlite"); console.log(Object.keys(m).join(","), typeof m.sqliteStore);',
    ],
    { encoding: "utf8", cwd: fileURLToPath(new URL("..", import.meta.url)) },
  );
  expect(out.trim()).toBe("sqliteStore function");
});

/**
 * Runs `body` in a new Node process (Node resolves a module once per process) after importing
 * the package as `sqliteStore`, and returns the specifiers that were resolved, with the lines
 * the body wrote (`mark("...")`) among them in order. A resolve hook, in Node's loader thread,
 * notes every specifier.
 */
function resolvedDuring(dir: string, body: string): string[] {
  const log = join(dir, "resolved.txt");
  writeFileSync(log, "");
  const hook = `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  appendFileSync(${JSON.stringify(log)}, specifier + "\\n");
  return next(specifier, context);
}`;
  execFileSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `import { register } from "node:module";
import { appendFileSync } from "node:fs";
register("data:text/javascript," + encodeURIComponent(${JSON.stringify(hook)}));
const mark = (text) => appendFileSync(${JSON.stringify(log)}, "-- " + text + "\\n");
const { sqliteStore } = await import("@sheepdog/store-sqlite");
${body}`,
    ],
    { encoding: "utf8", cwd: fileURLToPath(new URL("..", import.meta.url)) },
  );
  return readFileSync(log, "utf8").split("\n").filter(Boolean);
}

// Each runs Node processes: slow on a busy machine.
const processTimeout = { timeout: 30_000 };

it(
  "loads better-sqlite3 (and Kysely) only when a store opens its dbfile, not on import",
  processTimeout,
  () => {
    const dir = mkdtempSync(join(tmpdir(), "sheepdog-store-lazy-"));
    try {
      const file = join(dir, "s.sqlite");
      const lines = resolvedDuring(
        dir,
        `mark("imported");
const store = sqliteStore({ dbfile: ${JSON.stringify(file)} });
mark("made");
await store.listRequests();
mark("opened");
await store.close();`,
      );
      const imported = lines.indexOf("-- imported");
      const opened = lines.indexOf("-- opened");
      expect(lines.slice(0, imported)).toContain("@sheepdog/store-sqlite");
      const before = lines.slice(0, lines.indexOf("-- made"));
      expect(before.filter((s) => s.includes("better-sqlite3") || s.includes("kysely"))).toEqual(
        [],
      );
      expect(lines.slice(imported, opened)).toContain("better-sqlite3");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

it(
  "loads Kysely for its rarer calls, never on a map's path, a new file's included",
  processTimeout,
  () => {
    const dir = mkdtempSync(join(tmpdir(), "sheepdog-store-kysely-"));
    const file = join(dir, "s.sqlite");
    const step = (body: string): boolean =>
      resolvedDuring(
        dir,
        `const store = sqliteStore({ dbfile: ${JSON.stringify(file)} });
${body}
await store.close();`,
      ).some((specifier) => specifier.includes("kysely"));
    try {
      const mapPath = `
const { id } = await store.createRequest({ func: new Uint8Array([1]), ns: new Uint8Array(), args: [new Uint8Array([2])] });
await store.getRequest(id);
await store.getArgs(id, 0, 1);
await store.putResult(id, 0, new Uint8Array([3]));
await store.counts(id);
await store.updateMeta(id, { job: 1 });
await store.unreported(id, 0, 1);
if ((await store.getResults(id)).length !== 1) throw new Error("no result");`;
      // The first step makes the file: a new file's schema comes from a script, not migrations.
      expect(step(mapPath)).toBe(false);
      expect(step(mapPath)).toBe(false);
      expect(step("await store.listRequests();")).toBe(true);
      expect(step("await store.getErrors(1);")).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
