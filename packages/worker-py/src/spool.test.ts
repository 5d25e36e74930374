import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Remote } from "@sheepdog/contracts";
import { decodeSpoolFile, encodeFrames, encodeSpoolFile, macKey } from "@sheepdog/contracts";
import { localRemote } from "@sheepdog/local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PYTHON } from "./__fixtures__/python.js";
import type { SpooledFile } from "./spool-source.js";
import {
  listStaged,
  parseSpoolRead,
  parseStagedList,
  purgeStaged,
  readSpool,
  removeSpooled,
  spoolToolCommand,
} from "./spool-source.js";

const key = macKey(randomBytes(32));
const REQUEST = 7;
/** The head node's home: a name a shell would split and a quote would end. */
let home: string;
let remote: Remote & AsyncDisposable;
const options = { python: PYTHON };

beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), "sheepdog spool's home-"));
  remote = localRemote({ home });
});

afterAll(async () => {
  await remote.close();
  rmSync(home, { recursive: true, force: true });
});

/** A new directory under the home, by its path relative to the home. */
function newDir(name: string): string {
  mkdirSync(join(home, name), { recursive: true, mode: 0o700 });
  return name;
}

/** Writes a spool file of `reports` results for `task`, as a worker does, and returns it. */
function spool(dir: string, task: number, reports = 3, payloadBytes = 40): SpooledFile {
  const frames = Array.from({ length: reports }, (_, i) => ({
    index: task * 1000 + i,
    kind: "result" as const,
    payload: randomBytes(payloadBytes),
  }));
  const file = encodeSpoolFile(key, { request: REQUEST, task, reports: frames });
  writeFileSync(join(home, dir, file.name), file.bytes, { mode: 0o600 });
  return file;
}

const byName = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : 1);

describe("readSpool and removeSpooled (real python3 through localRemote)", () => {
  it("reads every file once, in name order, a byte limit's worth at a time, and never a .tmp", async () => {
    const dir = newDir(".sheepdog/sheepdog_7_0a1b2c3d.d/spool");
    const written = [1, 2, 3, 4, 5, 6, 7].map((task) => spool(dir, task)).sort(byName);
    writeFileSync(join(home, dir, `.8-${"A".repeat(22)}.tmp`), "half a report");
    writeFileSync(join(home, dir, "notes.txt"), "not a spool file");
    const perFile = 8 + (written[0]?.name.length ?? 0) + (written[0]?.bytes.byteLength ?? 0);
    const got: SpooledFile[] = [];
    const lefts: number[] = [];
    for (let call = 0; call < 10; call++) {
      const read = await readSpool(remote, dir, perFile * 3, options);
      got.push(...read.files.map((f) => ({ name: f.name, bytes: f.bytes.slice() })));
      lefts.push(read.more);
      expect(read.files.length).toBeLessThanOrEqual(3);
      expect(
        await removeSpooled(
          remote,
          dir,
          read.files.map((f) => f.name),
          options,
        ),
      ).toBe(read.files.length);
      if (read.more === 0) break;
    }
    expect(lefts).toEqual([4, 1, 0]);
    expect(got).toEqual(written.map((f) => ({ name: f.name, bytes: new Uint8Array(f.bytes) })));
    for (const file of got) {
      expect(decodeSpoolFile(key, REQUEST, file.name, file.bytes).reports).toHaveLength(3);
    }
    expect(existsSync(join(home, dir, `.8-${"A".repeat(22)}.tmp`))).toBe(true);
    expect(existsSync(join(home, dir, "notes.txt"))).toBe(true);
  });

  it("sends one file that is larger than the limit, and counts the rest", async () => {
    const dir = newDir("big/spool");
    const big = spool(dir, 1, 2, 10_000);
    spool(dir, 2);
    const read = await readSpool(remote, dir, 100, options);
    expect(read.files.map((f) => f.name)).toEqual([big.name]);
    expect(read.files[0]?.bytes).toEqual(new Uint8Array(big.bytes));
    expect(read.more).toBe(1);
  });

  it("finds nothing in a missing directory, and removes nothing there", async () => {
    expect(await readSpool(remote, "no/such/spool", 1000, options)).toEqual({
      files: [],
      more: 0,
      skipped: [],
    });
    expect(
      await removeSpooled(remote, "no/such/spool", [`1-${"B".repeat(22)}.reports`], options),
    ).toBe(0);
    expect(await removeSpooled(remote, "no/such/spool", [], options)).toBe(0);
  });

  it("reads no link and no directory, and removes a link without touching what it points to", async () => {
    const dir = newDir("hostile/spool");
    const secret = join(home, "secret.txt");
    writeFileSync(secret, "the user's other file");
    const link = `1-${"L".repeat(22)}.reports`;
    symlinkSync(secret, join(home, dir, link));
    mkdirSync(join(home, dir, `2-${"D".repeat(22)}.reports`));
    const real = spool(dir, 3);
    const read = await readSpool(remote, dir, 1 << 20, options);
    expect(read.files.map((f) => f.name)).toEqual([real.name]);
    expect(read.skipped).toEqual([link, `2-${"D".repeat(22)}.reports`]);
    expect(read.more).toBe(0);
    expect(await removeSpooled(remote, dir, [link, real.name], options)).toBe(2);
    expect(readFileSync(secret, "utf8")).toBe("the user's other file");
  });

  it("refuses names that are not a spool file's, in TypeScript and in the tool itself", async () => {
    const dir = newDir("refusing/spool");
    writeFileSync(join(home, "refusing", "x.reports"), "outside the spool");
    await expect(removeSpooled(remote, dir, ["../x.reports"], options)).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
    // The tool, given the names directly, removes none of them.
    const names = [
      "../x.reports",
      `1-${"C".repeat(21)}/.reports`,
      "",
      `1-${"C".repeat(22)}.reports\r`,
    ];
    const result = await remote.exec(spoolToolCommand("remove", [dir], PYTHON), {
      stdin: `${names.join("\n")}\n`,
    });
    expect({ code: result.code, out: JSON.parse(result.stdout) }).toEqual({
      code: 0,
      out: { removed: 0, refused: 3 },
    });
    expect(existsSync(join(home, "refusing", "x.reports"))).toBe(true);
  });

  it("fails with REMOTE_FAILED when the spool directory is a file, or python cannot run", async () => {
    writeFileSync(join(home, "a-file"), "");
    await expect(readSpool(remote, "a-file", 1000, options)).rejects.toMatchObject({
      code: "REMOTE_FAILED",
      message: expect.stringContaining("Cannot open the directory a-file"),
    });
    const missing = readSpool(remote, "x", 1000, { python: "no-such-python3" });
    await expect(missing).rejects.toMatchObject({
      code: "REMOTE_FAILED",
      detail: { code: 127 },
      message: expect.stringContaining("no-such-python3 cannot be run on local (exit 127"),
    });
    await expect(missing).rejects.toThrow(/Install Python 3\.8 or later on the head node/);
  });

  it("refuses a limit that is not a positive integer, and a path with NUL", async () => {
    await expect(readSpool(remote, "x", 0, options)).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
    expect(() => spoolToolCommand("read", ["a\0b", "1"])).toThrow(/without NUL/);
    expect(() => spoolToolCommand("rm" as "read", ["a"])).toThrow(/no command "rm"/);
  });
});

describe("parseSpoolRead", () => {
  const utf8 = new TextEncoder();
  const name = `4-${"N".repeat(22)}.reports`;
  const trailer = utf8.encode('{"more": 2, "skipped": []}');

  it("takes names and files, then the count", () => {
    const read = parseSpoolRead(
      new Uint8Array(encodeFrames([utf8.encode(name), new Uint8Array([1, 2]), trailer])),
    );
    expect(read).toEqual({
      files: [{ name, bytes: new Uint8Array([1, 2]) }],
      more: 2,
      skipped: [],
    });
  });

  it("refuses cut output, a name that is not a spool file's, and a missing count", () => {
    const whole = encodeFrames([utf8.encode(name), new Uint8Array([1, 2]), trailer]);
    expect(() => parseSpoolRead(whole.subarray(0, whole.byteLength - 1))).toThrow(/whole frames/);
    const bad = encodeFrames([utf8.encode("../x.reports"), new Uint8Array(1), trailer]);
    expect(() => parseSpoolRead(bad)).toThrow(/made of spool files/);
    expect(() => parseSpoolRead(encodeFrames([utf8.encode(name), new Uint8Array(1)]))).toThrow(
      /pairs of names and files/,
    );
    expect(() => parseSpoolRead(new Uint8Array())).toThrow(/pairs of names/);
  });
});

const manifestOf = (name: string): string => `{"request": 7, "name": "${name}"}`;

describe("parseStagedList", () => {
  const entry = {
    dir: "sheepdog_3_0123abcd.d",
    manifest: { request: 3 },
    spooled: 1,
    spooledBytes: 10,
    bytes: 20,
    modified: 1,
    token: false,
  };

  it("takes the list, and refuses an entry that lacks a field or names another directory", () => {
    expect(parseStagedList(JSON.stringify({ staged: [entry] }))).toEqual([entry]);
    for (const bad of [
      { ...entry, dir: "../x.d" },
      { ...entry, bytes: -1 },
      { ...entry, token: 1 },
    ]) {
      expect(() => parseStagedList(JSON.stringify({ staged: [bad] }))).toThrow(
        /answer to list is not a list of staged directories/,
      );
    }
    expect(() => parseStagedList("[]")).toThrow(/not a JSON object/);
  });
});

/** A staged directory `<sshDir>/<name>.d` with a manifest, a pack, spool files and a token. */
function stage(sshDir: string, name: string, spooled: number, manifest = manifestOf(name)): void {
  const dir = newDir(`${sshDir}/${name}.d/spool`).replace(/\/spool$/, "");
  writeFileSync(join(home, dir, "request.json"), manifest);
  writeFileSync(join(home, dir, "tasks-0.pack"), randomBytes(1000));
  for (let task = 1; task <= spooled; task++) spool(`${dir}/spool`, task);
  writeFileSync(join(home, dir, "spool", `.9-${"T".repeat(22)}.tmp`), "written now");
  writeFileSync(join(home, sshDir, `${name}.token`), "token\n", { mode: 0o600 });
}

describe("listStaged and purgeStaged", () => {
  it("lists each staged directory with its manifest, spool, size, newest change and token", async () => {
    const sshDir = ".list-ssh";
    stage(sshDir, "sheepdog_7_0a1b2c3d", 2);
    stage(sshDir, "sheepdog_12_ffffffff", 0, "{not json");
    rmSync(join(home, sshDir, "sheepdog_12_ffffffff.token"));
    newDir(`${sshDir}/not_a_request.d`);
    newDir("elsewhere");
    symlinkSync(join(home, "elsewhere"), join(home, sshDir, "sheepdog_9_00000000.d"));
    const when = new Date("2030-01-02T03:04:05Z");
    utimesSync(join(home, sshDir, "sheepdog_7_0a1b2c3d.d", "tasks-0.pack"), when, when);
    const staged = await listStaged(remote, sshDir, options);
    expect(staged.map((s) => s.dir)).toEqual(["sheepdog_12_ffffffff.d", "sheepdog_7_0a1b2c3d.d"]);
    const [other, first] = staged;
    const spoolSizes = readSpoolSizes(`${sshDir}/sheepdog_7_0a1b2c3d.d/spool`);
    expect(first).toEqual({
      dir: "sheepdog_7_0a1b2c3d.d",
      manifest: { request: 7, name: "sheepdog_7_0a1b2c3d" },
      spooled: 2,
      spooledBytes: spoolSizes,
      bytes: spoolSizes + 1000 + "written now".length + manifestOf("sheepdog_7_0a1b2c3d").length,
      modified: when.getTime(),
      token: true,
    });
    expect(other).toMatchObject({ manifest: null, spooled: 0, spooledBytes: 0, token: false });
    expect(await listStaged(remote, "no-such-dir", options)).toEqual([]);
  });

  it("removes staged directories and their token files, and nothing a link points to", async () => {
    const sshDir = ".purge-ssh";
    stage(sshDir, "sheepdog_7_0a1b2c3d", 3);
    stage(sshDir, "sheepdog_8_0a1b2c3d", 1);
    const outside = newDir("kept");
    writeFileSync(join(home, outside, "data"), "keep me");
    symlinkSync(join(home, outside), join(home, sshDir, "sheepdog_7_0a1b2c3d.d", "link-to-dir"));
    symlinkSync(
      join(home, outside, "data"),
      join(home, sshDir, "sheepdog_7_0a1b2c3d.d", "spool", "link"),
    );
    symlinkSync(join(home, outside), join(home, sshDir, "sheepdog_9_0a1b2c3d.d"));
    writeFileSync(join(home, sshDir, "sheepdog_5_0a1b2c3d.token"), "orphan\n");
    const result = await purgeStaged(
      remote,
      sshDir,
      ["sheepdog_7_0a1b2c3d.d", "sheepdog_9_0a1b2c3d.d", "sheepdog_5_0a1b2c3d.d"],
      options,
    );
    expect(result).toEqual({
      removed: ["sheepdog_7_0a1b2c3d.d"],
      tokens: ["sheepdog_7_0a1b2c3d.token", "sheepdog_5_0a1b2c3d.token"],
      missing: ["sheepdog_5_0a1b2c3d.d"],
      failed: [{ name: "sheepdog_9_0a1b2c3d.d", reason: "it is not a directory" }],
    });
    expect(existsSync(join(home, sshDir, "sheepdog_7_0a1b2c3d.d"))).toBe(false);
    expect(readFileSync(join(home, outside, "data"), "utf8")).toBe("keep me");
    expect(existsSync(join(home, sshDir, "sheepdog_9_0a1b2c3d.d"))).toBe(true);
    expect((await listStaged(remote, sshDir, options)).map((s) => s.dir)).toEqual([
      "sheepdog_8_0a1b2c3d.d",
    ]);
    expect(existsSync(join(home, sshDir, "sheepdog_8_0a1b2c3d.token"))).toBe(true);
  });

  it("refuses names that are not a staged directory's, in TypeScript and in the tool itself", async () => {
    const sshDir = newDir(".refuse-ssh");
    newDir("victim.d");
    await expect(purgeStaged(remote, sshDir, ["../victim.d"], options)).rejects.toMatchObject({
      code: "INVALID_INPUT",
    });
    const result = await remote.exec(
      spoolToolCommand("purge", [sshDir, "../victim.d", ".."], PYTHON),
    );
    expect(JSON.parse(result.stdout)).toMatchObject({
      removed: [],
      failed: [{ name: "../victim.d" }, { name: ".." }],
    });
    expect(existsSync(join(home, "victim.d"))).toBe(true);
  });
});

/** The bytes of the spool files in `dir`. */
function readSpoolSizes(dir: string): number {
  return readdirSync(join(home, dir))
    .filter((name) => name.endsWith(".reports"))
    .reduce((sum, name) => sum + readFileSync(join(home, dir, name)).byteLength, 0);
}
