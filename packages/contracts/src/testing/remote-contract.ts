import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SheepdogError, type SheepdogErrorCode } from "../errors.js";
import type { Remote } from "../remote.js";

/** Opens a fresh Remote. The suite closes each one it opens. */
export type RemoteFactory = () => Remote | Promise<Remote>;

/** Options of {@link describeRemoteContract}. */
export interface RemoteContractOptions {
  /** The size of the large stdout/stderr/stdin/file tests, in bytes. @default 4 MiB */
  largeBytes?: number;
  /** Timeout of each test, in milliseconds. @default 30_000 */
  timeout?: number;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the promise to reject, but it resolved");
}

async function expectCode(
  promise: Promise<unknown>,
  code: SheepdogErrorCode,
): Promise<SheepdogError> {
  const error = await rejection(promise);
  expect(SheepdogError.isInstance(error), `expected a SheepdogError, got ${String(error)}`).toBe(
    true,
  );
  expect((error as SheepdogError).code).toBe(code);
  expect((error as SheepdogError).message).toMatch(/^\[sheepdog\] \[[a-z0-9-]+\] /);
  return error as SheepdogError;
}

/** Asserts that calling `fn` does not throw synchronously and returns a promise. */
function callAsync(fn: () => Promise<unknown>): Promise<unknown> {
  let result: Promise<unknown> | undefined;
  expect(() => {
    result = fn();
  }).not.toThrow();
  expect(result).toBeInstanceOf(Promise);
  return result as Promise<unknown>;
}

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString("utf8");

/** A portable `stat` of a file's permission bits, as octal digits. */
const modeOf = (path: string): string => `(stat -c %a ${path} 2>/dev/null || stat -f %Lp ${path})`;

/**
 * The conformance suite for {@link Remote}: command semantics (exit codes, signals, stdin,
 * stderr, large output, concurrency, timeouts, abort), uploads with modes, readFile, mkdir -p,
 * relative paths, and use after close. Run it against your own Remote in one line:
 *
 * ```ts
 * import { describeRemoteContract } from "@sheepdog/contracts/testing";
 * describeRemoteContract("my-remote", () => myRemote());
 * ```
 *
 * It works in a fresh directory (`.sheepdog-remote-contract-<random>`) under the remote's home
 * and removes it afterwards. The remote needs a POSIX shell with `cat`, `head`, `tr`, `stat`,
 * `sleep` and `rm`.
 */
export function describeRemoteContract(
  name: string,
  factory: RemoteFactory,
  options: RemoteContractOptions = {},
): void {
  const largeBytes = options.largeBytes ?? 4 * 1024 * 1024;
  const timeout = options.timeout ?? 30_000;

  describe(`Remote contract: ${name}`, () => {
    const dir = `.sheepdog-remote-contract-${randomBytes(6).toString("hex")}`;
    const opened: Remote[] = [];
    const open = async (): Promise<Remote> => {
      const remote = await factory();
      opened.push(remote);
      return remote;
    };

    beforeAll(async () => {
      const remote = await open();
      await remote.mkdir(dir);
    }, timeout);

    afterEach(async () => {
      // Keep the first remote (used to clean up); close the rest.
      for (const remote of opened.splice(1)) await remote.close();
    });

    afterAll(async () => {
      const first = opened[0];
      if (!first) return;
      try {
        await first.exec(`rm -rf ${dir}`);
      } finally {
        await first.close();
        opened.length = 0;
      }
    }, timeout);

    describe("exec", () => {
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
    });

    describe("files", () => {
      it("uploads with mode 0o600 by default, and with the mode given", { timeout }, async () => {
        const remote = await open();
        await remote.upload(`${dir}/default.txt`, "a");
        await remote.upload(`${dir}/script.sh`, "#!/bin/sh\necho ran\n", 0o755);
        await remote.upload(`${dir}/shared.txt`, "c", 0o644);
        expect((await remote.exec(modeOf(`${dir}/default.txt`))).stdout).toBe("600\n");
        expect((await remote.exec(modeOf(`${dir}/script.sh`))).stdout).toBe("755\n");
        expect((await remote.exec(modeOf(`${dir}/shared.txt`))).stdout).toBe("644\n");
        expect((await remote.exec(`./${dir}/script.sh`)).stdout).toBe("ran\n");
      });

      it("replaces an existing file, contents and mode", { timeout }, async () => {
        const remote = await open();
        await remote.upload(`${dir}/replace.txt`, "a much longer first version\n", 0o644);
        await remote.upload(`${dir}/replace.txt`, "short", 0o600);
        expect(text(await remote.readFile(`${dir}/replace.txt`))).toBe("short");
        expect((await remote.exec(modeOf(`${dir}/replace.txt`))).stdout).toBe("600\n");
      });

      it("round-trips bytes, empty files and large files", { timeout }, async () => {
        const remote = await open();
        const every = new Uint8Array(256).map((_, i) => i);
        await remote.upload(`${dir}/bytes.bin`, every);
        expect(
          Buffer.from(await remote.readFile(`${dir}/bytes.bin`)).equals(Buffer.from(every)),
        ).toBe(true);
        await remote.upload(`${dir}/empty.txt`, "");
        expect((await remote.readFile(`${dir}/empty.txt`)).byteLength).toBe(0);
        const large = randomBytes(largeBytes);
        await remote.upload(`${dir}/large.bin`, large);
        expect(Buffer.from(await remote.readFile(`${dir}/large.bin`)).equals(large)).toBe(true);
        expect((await remote.exec(`wc -c < ${dir}/large.bin | tr -d ' '`)).stdout).toBe(
          `${largeBytes}\n`,
        );
        const view = new Uint8Array(every.buffer, 10, 5);
        await remote.upload(`${dir}/view.bin`, view);
        expect([...(await remote.readFile(`${dir}/view.bin`))]).toEqual([10, 11, 12, 13, 14]);
        await remote.upload(`${dir}/unicode.txt`, "hé€\n");
        expect((await remote.exec(`cat ${dir}/unicode.txt`)).stdout).toBe("hé€\n");
      });

      it("creates no directories on upload, and fails with REMOTE_FAILED", {
        timeout,
      }, async () => {
        const remote = await open();
        await expectCode(remote.upload(`${dir}/missing/dir/file.txt`, "x"), "REMOTE_FAILED");
        expect((await remote.exec(`test -e ${dir}/missing && echo yes || echo no`)).stdout).toBe(
          "no\n",
        );
      });

      it("fails to read a missing file or a directory with REMOTE_FAILED", {
        timeout,
      }, async () => {
        const remote = await open();
        await expectCode(remote.readFile(`${dir}/no-such-file`), "REMOTE_FAILED");
        await expectCode(remote.readFile(dir), "REMOTE_FAILED");
      });

      it("makes directories and their parents (mkdir -p), mode 0o700 by default", {
        timeout,
      }, async () => {
        const remote = await open();
        await remote.mkdir(`${dir}/p/q/r`);
        await remote.mkdir(`${dir}/p/q/r`);
        await remote.mkdir(`${dir}/p/q`);
        await remote.mkdir(`${dir}/p/./q/r/s/`);
        expect((await remote.exec(`test -d ${dir}/p/q/r/s && echo dir`)).stdout).toBe("dir\n");
        expect((await remote.exec(modeOf(`${dir}/p/q/r`))).stdout).toBe("700\n");
        expect((await remote.exec(modeOf(`${dir}/p`))).stdout).toBe("700\n");
        await remote.mkdir(`${dir}/open`, 0o755);
        expect((await remote.exec(modeOf(`${dir}/open`))).stdout).toBe("755\n");
        const cwd = (await remote.exec("pwd")).stdout.trim();
        await remote.mkdir(`${cwd}/${dir}/absolute/x`);
        expect((await remote.exec(`test -d ${dir}/absolute/x && echo dir`)).stdout).toBe("dir\n");
      });

      it("refuses to make a directory where a file is", { timeout }, async () => {
        const remote = await open();
        await remote.upload(`${dir}/plain`, "x");
        await expectCode(remote.mkdir(`${dir}/plain/sub`), "REMOTE_FAILED");
        await expectCode(remote.mkdir(`${dir}/plain`), "REMOTE_FAILED");
      });
    });

    describe("lifecycle", () => {
      it("rejects every call after close() with CLOSED; a second close is harmless", {
        timeout,
      }, async () => {
        const remote = await open();
        await remote.exec("true");
        await remote.close();
        await remote.close();
        await expectCode(
          callAsync(() => remote.exec("true")),
          "CLOSED",
        );
        await expectCode(
          callAsync(() => remote.upload(`${dir}/after-close`, "x")),
          "CLOSED",
        );
        await expectCode(
          callAsync(() => remote.readFile(`${dir}/where.txt`)),
          "CLOSED",
        );
        await expectCode(
          callAsync(() => remote.mkdir(`${dir}/after-close-dir`)),
          "CLOSED",
        );
      });

      it("rejects a command in flight with CLOSED when closed", { timeout }, async () => {
        const remote = await open();
        const marker = `${dir}/close-marker`;
        const running = expectCode(remote.exec(`sleep 1.5; echo late > ${marker}`), "CLOSED");
        await new Promise((resolve) => setTimeout(resolve, 200));
        await remote.close();
        await running;
        const checker = await open();
        await new Promise((resolve) => setTimeout(resolve, 1800));
        expect((await checker.exec(`test -e ${marker} && echo exists || echo absent`)).stdout).toBe(
          "absent\n",
        );
      });

      it("rejects bad arguments without throwing synchronously", { timeout }, async () => {
        const remote = await open();
        const error = await rejection(
          callAsync(() => remote.upload(`${dir}/bad-mode`, "x", -1 as number)),
        );
        expect(SheepdogError.isInstance(error)).toBe(true);
        const nul = await rejection(callAsync(() => remote.readFile("a\0b")));
        expect(SheepdogError.isInstance(nul)).toBe(true);
      });
    });
  });
}
