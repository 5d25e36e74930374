import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { PYTHON } from "./__fixtures__/python.js";
import { workerPath } from "./worker-source.js";

function unittest(python: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      python,
      ["-m", "unittest", "-q", "test_sheepdog_worker"],
      {
        cwd: dirname(workerPath),
        timeout: 60_000,
        env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" },
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, output: `${stdout}${stderr}` });
      },
    );
  });
}

// The oldest Python the worker supports, when this machine has it (pyenv); Debian's python3
// always runs.
const python38 = join(homedir(), ".pyenv/versions/3.8.18/bin/python3");

// The suite takes about 4 s alone; the limit is the one unittest() gives the process.
describe("the worker's Python unit tests", () => {
  it(`pass on ${PYTHON}`, async () => {
    const { code, output } = await unittest(PYTHON);
    expect(output).toMatch(/\nOK\s*$/);
    expect(code).toBe(0);
  }, 60_000);

  it.skipIf(!existsSync(python38))(
    "pass on Python 3.8",
    async () => {
      const { code, output } = await unittest(python38);
      expect(output).toMatch(/\nOK\s*$/);
      expect(code).toBe(0);
    },
    60_000,
  );
});
