import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { expectCode } from "./expect-code.js";
import { modeOf, text } from "./inspect.js";
import type { RemoteSuite } from "./suite.js";

/** The "files" group: upload with modes, readFile, mkdir -p. */
export function describeFiles(suite: RemoteSuite): void {
  describe("files", () => {
    uploadTests(suite);
    readAndMkdirTests(suite);
  });
}

/** Uploads: modes, replacing a file, bytes of every size, no directories made. */
function uploadTests(suite: RemoteSuite): void {
  const { dir, open, timeout, largeBytes } = suite;

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
    expect(Buffer.from(await remote.readFile(`${dir}/bytes.bin`)).equals(Buffer.from(every))).toBe(
      true,
    );
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
}

/** readFile of what is not a file; mkdir -p with modes; mkdir where a file is. */
function readAndMkdirTests(suite: RemoteSuite): void {
  const { dir, open, timeout } = suite;

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
}
