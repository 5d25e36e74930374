import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { encodeSpoolFile, hashToken, macKey } from "@sheepdog/contracts";
import { encode } from "@sheepdog/serialise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getResults, listRequests, map, py, shutdown } from "./index.js";

const core = JSON.stringify(pathToFileURL(join(import.meta.dirname, "../dist/index.js")).href);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sheepdog-detached-"));
});
afterAll(async () => {
  await shutdown();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs a program that submits a detached map of `source`'s `f` over `[0] .. [calls - 1]` on
 * this machine, leaves its tasks running and exits at once; returns the request's id.
 */
function submitAndExit(
  source: string,
  calls: number,
  settings: { dbfile: string; sshDir: string; chunkSize: number },
): number {
  const program = join(dir, `submit-${calls}-${settings.chunkSize}.mjs`);
  const config = JSON.stringify({ host: "local", concurrency: 2, ...settings });
  writeFileSync(
    program,
    `import { mapAsync, py, shutdown } from ${core};
const f = py(Object.assign([${JSON.stringify(source)}], { raw: [${JSON.stringify(source)}] }));
const args = Array.from({ length: ${calls} }, (_, i) => [i]);
const id = await mapAsync(f, args, ${config}, { detach: true });
await shutdown({ keepLocalTasks: true });
console.log(id);
process.exit(0);
`,
  );
  return Number(execFileSync(process.execPath, [program], { timeout: 60_000 }).toString());
}

/** The mode bits of a path, as `0o700`. */
const modeOf = (path: string) => statSync(path).mode & 0o777;

describe("detached requests on this machine", () => {
  it("run without their client, spool every report, and come home with getResults({ block })", async () => {
    const dbfile = join(dir, "walk-away.sqlite");
    const sshDir = join(dir, "jobs");
    // Submit, leave the local tasks running, exit: no server ever answers these workers.
    const id = submitAndExit("def f(x):\n    return x * 3\n", 20, { dbfile, sshDir, chunkSize: 3 });
    const [staged] = readdirSync(sshDir).filter((name) => name.endsWith(".d"));
    expect(staged).toMatch(/^sheepdog_\d+_[0-9a-f]{8}\.d$/);
    const stagedDir = join(sshDir, staged as string);
    expect(modeOf(stagedDir)).toBe(0o700);
    expect(modeOf(join(stagedDir, "spool"))).toBe(0o700);
    expect(modeOf(join(stagedDir, "tasks-0.pack"))).toBe(0o600);

    const results = await getResults(id, { dbfile, block: true });
    expect(results.map(([args, r]) => [args[0], r])).toEqual(
      Array.from({ length: 20 }, (_, i) => [i, i * 3]),
    );
    // Every result is home, so nothing of the request is left on the "cluster".
    expect(existsSync(stagedDir)).toBe(false);
    const left = readdirSync(sshDir).filter((name) => name.startsWith(`sheepdog_${id}_`));
    expect(left.filter((name) => name.endsWith(".token") || name.endsWith(".d"))).toEqual([]);
    const [summary] = (await listRequests({ dbfile })).filter((r) => r.id === id);
    expect(summary?.meta.stagedRemoved).toEqual(expect.any(Number));
    // Its tasks read their own from the pack, unseen by a server: none may claim another's.
    expect(summary?.meta).not.toHaveProperty("claims");
  }, 90_000);

  it("refuses spool files its workers did not write: another key, or not frames at all", async () => {
    const dbfile = join(dir, "forged.sqlite");
    const sshDir = join(dir, "forged-jobs");
    const gate = join(dir, "forged-gate");
    const source = `def f(x):
    import os, time
    while not os.path.exists(${JSON.stringify(gate)}):
        time.sleep(0.05)
    return x * 3
`;
    const id = submitAndExit(source, 2, { dbfile, sshDir, chunkSize: 1 });
    const [staged] = readdirSync(sshDir).filter((name) => name.endsWith(".d"));
    const spool = join(sshDir, staged as string, "spool");
    // Named to be read before the real ones: a result of 999 for task 1, under another key.
    const forged = encodeSpoolFile(macKey(hashToken("not the request's token")), {
      request: id,
      task: 1,
      nonce: "-".repeat(22),
      reports: [{ index: 0, kind: "result", payload: encode(999) }],
    });
    writeFileSync(join(spool, forged.name), forged.bytes);
    writeFileSync(join(spool, `2-${"-".repeat(21)}_.reports`), "not frames");
    writeFileSync(gate, "");
    const results = await getResults(id, { dbfile, block: true });
    expect(results.map(([, r]) => r)).toEqual([0, 3]);
    expect(existsSync(spool)).toBe(false);
  }, 60_000);

  it("map with detach delivers live while its client is there, leaving nothing behind", async () => {
    const dbfile = join(dir, "live.sqlite");
    const sshDir = join(dir, "live-jobs");
    const f = py<[number], number>`
def f(x):
    return x + 100
`;
    const results = await map(
      f,
      Array.from({ length: 6 }, (_, i) => [i] as [number]),
      { host: "local", concurrency: 2, dbfile, sshDir },
      { detach: true },
    );
    expect(results).toEqual([100, 101, 102, 103, 104, 105]);
    expect(readdirSync(sshDir).filter((name) => name.endsWith(".d"))).toEqual([]);
  }, 60_000);
});
