import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { expectCode } from "./expect-code.js";
import { text } from "./inspect.js";
import type { RemoteSuite } from "./suite.js";

/** The "exec" group: what a command returns, what it is given, and how it is stopped. */
export function describeExec(suite: RemoteSuite): void {
  describe("exec", () => {
    execResultTests(suite);
    execInputTests(suite);
    execStopTests(suite);
  });
}

/** Stdout, stderr, exit codes, a missing command, signals, UTF-8. */
function execResultTests(suite: RemoteSuite): void {
  const { open, timeout } = suite;

  it("has a name", async () => {
    const remote = await open();
    expect(typeof remote.name).toBe("string");
    expect(remote.name.length).toBeGreaterThan(0);
  });

  it("returns stdout, stderr and the exit code", { timeout }, async () => {
    const remote = await open();
    expect(await remote.exec("echo out; echo err >&2")).toEqual({
      stdout: "out\n",
      stderr: "err\n",
      code: 0,
      signal: null,
    });
    expect(await remote.exec("printf 'no newline'; exit 3")).toEqual({
      stdout: "no newline",
      stderr: "",
      code: 3,
      signal: null,
    });
    expect((await remote.exec("exit 255")).code).toBe(255);
    expect((await remote.exec("false")).code).toBe(1);
  });

  it("reports a command that is not found as exit code 127, not a rejection", {
    timeout,
  }, async () => {
    const remote = await open();
    const result = await remote.exec("sheepdog-no-such-command-x");
    expect(result.code).toBe(127);
    expect(result.stderr).not.toBe("");
  });

  it("reports the signal that ended a command, with a null code", { timeout }, async () => {
    const remote = await open();
    expect(await remote.exec("echo before; kill -9 $$")).toEqual({
      stdout: "before\n",
      stderr: "",
      code: null,
      signal: "KILL",
    });
    const term = await remote.exec("kill -TERM $$");
    expect(term.code).toBeNull();
    expect(term.signal).toBe("TERM");
  });

  it("decodes UTF-8 output, even split across chunks", { timeout }, async () => {
    const remote = await open();
    const result = await remote.exec(
      "i=0; while [ $i -lt 2000 ]; do printf 'h\\303\\251\\342\\202\\254'; i=$((i+1)); done",
    );
    expect(result.stdout).toBe("hé€".repeat(2000));
  });
}

/** Stdin, large streams, many commands at once, the working directory. */
function execInputTests(suite: RemoteSuite): void {
  const { dir, open, timeout, largeBytes } = suite;

  it("writes stdin and closes it; with no stdin, reads end at once", { timeout }, async () => {
    const remote = await open();
    expect((await remote.exec("cat", { stdin: "line 1\nline 2\n" })).stdout).toBe(
      "line 1\nline 2\n",
    );
    const bytes = new Uint8Array([104, 105, 0, 255]);
    const hex = await remote.exec("od -An -tx1 | tr -d ' \\n'", { stdin: bytes });
    expect(hex.stdout).toBe("686900ff");
    expect(await remote.exec("cat; echo done")).toMatchObject({ stdout: "done\n", code: 0 });
    expect((await remote.exec("wc -c | tr -d ' '", { stdin: "" })).stdout).toBe("0\n");
  });

  it("carries large stdin, stdout and stderr whole", { timeout }, async () => {
    const remote = await open();
    const result = await remote.exec(
      `head -c ${largeBytes} /dev/zero | tr '\\0' a; head -c ${largeBytes} /dev/zero | tr '\\0' b >&2`,
    );
    expect(result.code).toBe(0);
    expect(result.stdout.length).toBe(largeBytes);
    expect(result.stderr.length).toBe(largeBytes);
    expect(result.stdout).toBe("a".repeat(largeBytes));
    expect(result.stderr).toBe("b".repeat(largeBytes));
    const input = randomBytes(largeBytes);
    const echoed = await remote.exec("wc -c | tr -d ' '", { stdin: input });
    expect(echoed.stdout).toBe(`${largeBytes}\n`);
  });

  it("runs many commands at once, each with its own result", { timeout }, async () => {
    const remote = await open();
    const results = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        remote.exec(`sleep 0.1; echo ${i}; echo e${i} >&2; exit ${i % 5}`),
      ),
    );
    results.forEach((result, i) => {
      expect(result).toEqual({
        stdout: `${i}\n`,
        stderr: `e${i}\n`,
        code: i % 5,
        signal: null,
      });
    });
  });

  it("runs in the home directory, where relative paths point", { timeout }, async () => {
    const remote = await open();
    await remote.upload(`${dir}/where.txt`, "here");
    expect((await remote.exec(`cat ${dir}/where.txt`)).stdout).toBe("here");
    const cwd = (await remote.exec("pwd")).stdout.trim();
    expect(text(await remote.readFile(`${cwd}/${dir}/where.txt`))).toBe("here");
  });
}

/** timeoutMs and an abort signal stop the command. */
function execStopTests(suite: RemoteSuite): void {
  const { dir, open, timeout } = suite;

  it("rejects with TIMEOUT after timeoutMs, and stops the command", { timeout }, async () => {
    const remote = await open();
    const marker = `${dir}/timeout-marker`;
    const started = Date.now();
    const error = await expectCode(
      remote.exec(`sleep 1.5; echo late > ${marker}`, { timeoutMs: 200 }),
      "TIMEOUT",
    );
    expect(Date.now() - started).toBeLessThan(1400);
    expect(error.message).toMatch(/200 ms/);
    await new Promise((resolve) => setTimeout(resolve, 1800));
    expect((await remote.exec(`test -e ${marker} && echo exists || echo absent`)).stdout).toBe(
      "absent\n",
    );
    // The remote is still usable.
    expect((await remote.exec("echo ok")).stdout).toBe("ok\n");
  });

  it("rejects with ABORTED when the signal aborts, and stops the command", {
    timeout,
  }, async () => {
    const remote = await open();
    const marker = `${dir}/abort-marker`;
    const controller = new AbortController();
    const running = remote.exec(`sleep 1.5; echo late > ${marker}`, {
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 150);
    await expectCode(running, "ABORTED");
    await expectCode(remote.exec("echo never", { signal: AbortSignal.abort() }), "ABORTED");
    await new Promise((resolve) => setTimeout(resolve, 1800));
    expect((await remote.exec(`test -e ${marker} && echo exists || echo absent`)).stdout).toBe(
      "absent\n",
    );
  });
}
