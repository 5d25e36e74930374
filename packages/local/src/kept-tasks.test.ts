import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";

let home: string;
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), "sheepdog-kept-"));
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

const done = () => readdirSync(home).filter((name) => name.startsWith("done-"));

it("keepTasksOnClose: every task runs after the program exits, not only the first slots' worth", async () => {
  const program = join(import.meta.dirname, "__fixtures__/submit-and-exit.mjs");
  execFileSync(process.execPath, [program, home, "7"], {
    env: { ...process.env, HOME_DIR: home },
    cwd: import.meta.dirname,
    timeout: 30_000,
  });
  const deadline = Date.now() + 20_000;
  while (done().length < 7 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect(done().sort()).toEqual([1, 2, 3, 4, 5, 6, 7].map((n) => `done-${n}`));
}, 40_000);
