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

it("loads Kysely to migrate and for its rarer calls, never on a map's path", () => {
  // A resolve hook (in Node's loader thread) notes every specifier that names kysely. Each step
  // runs in a new process, as Node resolves a module once per process.
  const dir = mkdtempSync(join(tmpdir(), "sheepdog-store-kysely-"));
  const log = join(dir, "resolved.txt");
  const file = join(dir, "s.sqlite");
  const hook = `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  if (specifier.includes("kysely")) appendFileSync(${JSON.stringify(log)}, specifier + "\\n");
  return next(specifier, context);
}`;
  const step = (body: string): boolean => {
    writeFileSync(log, "");
    execFileSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `import { register } from "node:module";
register("data:text/javascript," + encodeURIComponent(${JSON.stringify(hook)}));
const { sqliteStore } = await import("@sheepdog/store-sqlite");
const store = sqliteStore({ dbfile: ${JSON.stringify(file)} });
${body}
await store.close();`,
      ],
      { encoding: "utf8", cwd: fileURLToPath(new URL("..", import.meta.url)) },
    );
    return readFileSync(log, "utf8").length > 0;
  };
  try {
    expect(step("await store.listRequests();")).toBe(true);
    const mapPath = `
const { id } = await store.createRequest({ func: new Uint8Array([1]), ns: new Uint8Array(), args: [new Uint8Array([2])] });
await store.getRequest(id);
await store.getArgs(id, 0, 1);
await store.putResult(id, 0, new Uint8Array([3]));
await store.counts(id);
await store.updateMeta(id, { job: 1 });
await store.unreported(id, 0, 1);
if ((await store.getResults(id)).length !== 1) throw new Error("no result");`;
    expect(step(mapPath)).toBe(false);
    expect(step("await store.getErrors(1);")).toBe(true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
