import {
  chmodSync,
  chownSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { checkSyntax, checkSyntaxInBackground } from "./internal/syntax-check.js";

const good = [{ where: "good.py", source: "def f(x):\n    return x\n" }];
const broken = [{ where: "broken.py", source: "def f(x):\n    return [x for x in]\n" }];

// Each test starts Python up to four times; a loaded machine (CI runs packages side by side)
// takes longer than vitest's default 5 s for that.
describe("the syntax check remembers sources that passed, across processes", {
  timeout: 30_000,
}, () => {
  let dir: string;
  let runs: string;
  const saved = { python: process.env.SHEEPDOG_CHECK_PYTHON, cache: process.env.XDG_CACHE_HOME };
  const folder = () => join(dir, "cache", "sheepdog", "syntax-ok");
  const pythonRuns = () => readFileSync(runs, "utf8").split("\n").filter(Boolean).length;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "sheepdog-syntax-cache-"));
    runs = join(dir, "runs");
    writeFileSync(runs, "");
    // A Python that counts its runs: the check's own interpreter, behind a wrapper.
    const python = join(dir, "python3");
    writeFileSync(python, `#!/bin/sh\necho run >> ${runs}\nexec python3 "$@"\n`, { mode: 0o755 });
    process.env.SHEEPDOG_CHECK_PYTHON = python;
    process.env.XDG_CACHE_HOME = join(dir, "cache");
  });
  afterEach(() => {
    for (const [name, value] of [
      ["SHEEPDOG_CHECK_PYTHON", saved.python],
      ["XDG_CACHE_HOME", saved.cache],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("checks a source once, in a folder and a file only this user can read", async () => {
    await checkSyntaxInBackground(good);
    await checkSyntaxInBackground(good);
    checkSyntax(good);
    expect(pythonRuns()).toBe(1);
    expect(statSync(folder()).mode & 0o777).toBe(0o700);
    const [entry] = readdirSync(folder());
    expect(statSync(join(folder(), entry as string)).mode & 0o777).toBe(0o600);
    await checkSyntaxInBackground([{ where: "other.py", source: "x = 1\n" }]);
    expect(pythonRuns()).toBe(2);
  });

  it("does not remember a syntax error", async () => {
    for (let i = 0; i < 2; i++) {
      await expect(checkSyntaxInBackground(broken)).rejects.toThrow(/syntax error at line 2/);
    }
    expect(() => checkSyntax(broken)).toThrow(/syntax error at line 2/);
    expect(pythonRuns()).toBe(3);
  });

  it("does not use a folder that others may write in, or another user's", async () => {
    await checkSyntaxInBackground(good);
    chmodSync(folder(), 0o777);
    await checkSyntaxInBackground(good);
    expect(pythonRuns()).toBe(2);
    chmodSync(folder(), 0o700);
    await checkSyntaxInBackground(good);
    expect(pythonRuns()).toBe(2);
    // Another user's folder (nobody's), where the tests run as root as they do in CI.
    if (process.getuid?.() !== 0) return;
    chownSync(folder(), 65534, 65534);
    await checkSyntaxInBackground(good);
    expect(pythonRuns()).toBe(3);
  });
});
