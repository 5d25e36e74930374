import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { sqliteStore } from "@sheepdog/store-sqlite";
import type { IsolatedClient } from "@sheepdog/testcluster";
import {
  describeCluster,
  isolatedClientOf,
  schedulerSettings,
  sshArgs,
} from "@sheepdog/testcluster";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createSheepdog, py } from "./index.js";

const run = promisify(execFile);
const clientScript = fileURLToPath(new URL("./__fixtures__/isolated-client.mjs", import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A request's record and counts, read from the dbfile another process writes. */
async function readRequest(dbfile: string, id: number) {
  const store = sqliteStore({ dbfile });
  try {
    return { info: await store.getRequest(id), counts: await store.counts(id) };
  } finally {
    await store.close();
  }
}

describeCluster("a detached request's collection over a connection that drops", (cluster) => {
  let dir: string;
  let client: IsolatedClient;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "sheepdog-detached-"));
    client = await isolatedClientOf(cluster);
  });
  afterAll(async () => {
    await client?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function onHead(command: string): Promise<string> {
    const { stdout } = await run("ssh", [...sshArgs(cluster), command], { timeout: 30_000 });
    return stdout;
  }

  const cut = [
    "add table inet sheepdog_cut",
    "add chain inet sheepdog_cut output { type filter hook output priority 0 ; }",
    `add rule inet sheepdog_cut output tcp dport ${cluster.port} reject with tcp reset`,
  ].join("\n");

  it("the SSH connection of a collector is cut mid-collection: nothing is lost, and collecting again finishes without duplicates", async () => {
    const dbfile = join(dir, "dropped.sqlite");
    const settings = { ...schedulerSettings(cluster, "gridengine"), dbfile, chunkSize: 1 };
    // 24 results of 6 MB: the spool is read in several slices of 32 MiB.
    const big = py<[number], Uint8Array>`
def f(x):
    return bytes([x]) * 6000000
`;
    const id = await (async () => {
      await using dog = createSheepdog(settings);
      return await dog.mapAsync(
        big,
        Array.from({ length: 24 }, (_, i) => [i] as [number]),
        { detach: true },
      );
    })();
    const { info } = await readRequest(dbfile, id);
    const staged = info.meta.staged as { spoolDir: string };
    const spooled = async () =>
      Number((await onHead(`ls ${staged.spoolDir} | grep -c 'reports$' || true`)).trim());
    // Every task has ended and spooled (nothing ever answered them).
    for (let i = 0; i < 600 && (await spooled()) < 24; i++) await sleep(500);
    expect(await spooled()).toBe(24);

    // A collector in a namespace whose SSH connection can be cut.
    const input = {
      scenario: "collect",
      config: { ...settings, host: client.sshHost },
      request: id,
    };
    const collector = client.start(process.execPath, [clientScript, JSON.stringify(input)]);
    const closed = new Promise((resolve) => collector.on("close", resolve));
    let storedAtCut = -1;
    for (let i = 0; i < 1200 && storedAtCut < 0; i++) {
      const { counts } = await readRequest(dbfile, id);
      if (counts.results > 0) storedAtCut = counts.results;
      else await sleep(50);
    }
    expect((await client.run("nft", ["-f", "-"], { input: cut })).status).toBe(0);
    try {
      // Cut while reports were still on the cluster.
      expect(storedAtCut).toBeGreaterThan(0);
      expect(storedAtCut).toBeLessThan(24);
      await sleep(3000);
    } finally {
      expect((await client.run("nft", ["delete", "table", "inet", "sheepdog_cut"])).status).toBe(0);
    }
    collector.kill("SIGKILL");
    await closed;
    expect(await spooled()).toBeGreaterThan(0);

    // A second collection, here, finishes the job: every result once, in order.
    await using dog = createSheepdog(settings);
    const rows = await dog.getResults<Uint8Array>(id, { block: true });
    expect(rows.map(([args, value]) => [args[0], value?.length, value?.[0]])).toEqual(
      Array.from({ length: 24 }, (_, i) => [i, 6_000_000, i]),
    );
    expect((await readRequest(dbfile, id)).counts).toEqual({ tasks: 24, results: 24, errors: 0 });
    expect((await onHead(`test -e ${staged.spoolDir} && echo left || echo gone`)).trim()).toBe(
      "gone",
    );
  }, 300_000);
});
