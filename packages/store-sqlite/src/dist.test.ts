import { execFileSync } from "node:child_process";
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
