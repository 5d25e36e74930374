import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecResult } from "./remote.js";
import {
  parseStderrTails,
  readStderrTails,
  STDERR_TAIL_BYTES,
  stderrTailsCommand,
  tailLines,
  withStderrTail,
} from "./stderr-tail.js";

let dir: string;

/** Runs a command with /bin/sh in `dir`, as a remote's exec runs it in the login's home. */
function sh(command: string): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile("/bin/sh", ["-c", command], { cwd: dir }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, signal: null, stdout, stderr });
    });
  });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sheepdog-stderr-tail-"));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("readStderrTails", () => {
  it("reads the last lines of many files with one command, in their order", async () => {
    const long = Array.from({ length: 300 }, (_, i) => `line ${i}`).join("\n");
    writeFileSync(join(dir, "a.e1.1"), "Traceback:\n  boom\nValueError: bad\n");
    writeFileSync(join(dir, "empty.e1.2"), "");
    writeFileSync(join(dir, "long.e1.3"), `${long}\n`);
    writeFileSync(join(dir, "-odd name"), "\u001b[31mred\u001b[0m and a bell\u0007\r\nlast\n");
    const commands: string[] = [];
    const tails = await readStderrTails(
      (command) => {
        commands.push(command);
        return sh(command);
      },
      ["a.e1.1", "empty.e1.2", "missing.e1.4", "long.e1.3", "-odd name", join(dir, "a.e1.1")],
    );
    expect(commands).toHaveLength(1);
    expect(tails).toEqual([
      "Traceback:\n  boom\nValueError: bad",
      "",
      "",
      "line 295\nline 296\nline 297\nline 298\nline 299",
      "?[31mred?[0m and a bell?\nlast",
      "Traceback:\n  boom\nValueError: bad",
    ]);
  });

  it("reads only the end of a large file, leaving out the line it cut", async () => {
    writeFileSync(join(dir, "big"), `${"x".repeat(5000)}\nend one\nend two\n`);
    const [tail] = await readStderrTails(sh, ["big"]);
    // The x line was cut by the byte limit, so it is not shown at all.
    expect(tail).toBe("end one\nend two");
    writeFileSync(join(dir, "one-line"), "y".repeat(5000));
    const [cut] = await readStderrTails(sh, ["one-line"]);
    expect(cut).toBe("y".repeat(STDERR_TAIL_BYTES));
  });

  it("answers no tail, never a rejection, when the command cannot run", async () => {
    expect(await readStderrTails(() => Promise.reject(new Error("gone")), ["a", "b"])).toEqual([
      "",
      "",
    ]);
    const failed: ExecResult = { code: 255, signal: null, stdout: "", stderr: "no" };
    expect(await readStderrTails(async () => failed, ["a"])).toEqual([""]);
    expect(await readStderrTails(sh, [])).toEqual([]);
  });

  it("quotes every path, so a file name runs nothing", async () => {
    const command = stderrTailsCommand(["$(touch pwned)", "`touch pwned`; x"], "m");
    expect((await sh(command)).code).toBe(0);
    expect((await sh("test -e pwned")).code).not.toBe(0);
  });
});

describe("parseStderrTails and withStderrTail", () => {
  it("keeps a file's lines apart from the marker and pads a short answer", () => {
    const marker = "==sheepdog-stderr-tail k==";
    expect(parseStderrTails(`${marker}\none\n\n${marker}\n\n`, 3, "k")).toEqual(["one", "", ""]);
    expect(tailLines("\n\na\n\n")).toBe("a");
  });

  it("adds the tail, indented, after the reason; the reason alone without one", () => {
    expect(withStderrTail("exited with status 1", "a\nb")).toBe(
      "exited with status 1; the end of its stderr:\n    a\n    b",
    );
    expect(withStderrTail("exited with status 1", "")).toBe("exited with status 1");
  });
});
