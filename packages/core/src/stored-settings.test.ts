import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SheepdogError } from "@sheepdog/contracts";
import { sqliteStore } from "@sheepdog/store-sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SheepdogConfig } from "./index.js";
import {
  cancelRequest,
  getResults,
  map,
  mapSettled,
  py,
  recover,
  requestStatus,
  shutdown,
} from "./index.js";

/**
 * A dbfile is data, never configuration that runs: someone who can write a shared
 * sheepdog.sqlite must not steer the SSH of whoever reads it.
 */
describe("settings stored with a request", () => {
  let dir: string;
  let config: SheepdogConfig;
  let marker: string;
  let request: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "sheepdog-stored-"));
    marker = join(dir, "ran");
    config = { host: "local", dbfile: join(dir, "sheepdog.sqlite") };
    const f = py`
def f(x):
    return x
`;
    request = (await mapSettled(f, [[1]], config)).request;
    expect(await map(f, [[2]], config)).toEqual([2]);
  });
  afterAll(async () => {
    await shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Rewrites what the request keeps about its cluster, as a tampered file would. */
  async function tamper(connection: Record<string, unknown>): Promise<void> {
    const store = sqliteStore({ dbfile: config.dbfile as string });
    try {
      const { meta } = await store.getRequest(request);
      const job = meta.job as Record<string, unknown>;
      // Unfinished, so that status and getResults({ block }) would reach for the cluster.
      await store.updateMeta(request, { connection, job: { ...job, scheduler: "gridengine" } });
      await store.resetTasks(request, [0]);
    } finally {
      await store.close();
    }
  }

  it("never takes SSH settings from the dbfile: a stored ProxyCommand does not run", async () => {
    const sshConfig = join(dir, "evil_config");
    writeFileSync(sshConfig, `Host localhost\n  ProxyCommand touch ${marker}\n`);
    await tamper({ host: "localhost", sshPort: 1, sshConfig, sshKnownHosts: sshConfig });
    const status = await requestStatus(request, { dbfile: config.dbfile as string });
    expect(status.schedulerError).toBeDefined();
    await expect(cancelRequest(request, { dbfile: config.dbfile as string })).rejects.toThrow();
    await expect(recover(request, { dbfile: config.dbfile as string })).rejects.toThrow();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 1500);
    await getResults(request, {
      dbfile: config.dbfile as string,
      block: true,
      signal: ac.signal,
    }).catch(() => undefined);
    expect(existsSync(marker)).toBe(false);
  }, 30_000);

  it("takes a stored host only as a plain name", async () => {
    await tamper({ host: `localhost -oProxyCommand=touch\${IFS}${marker}` });
    const error = await requestStatus(request, { dbfile: config.dbfile as string }).catch((e) => e);
    expect(SheepdogError.isInstance(error) && error.code).toBe("CONFIG_INVALID");
    expect((error as Error).message).toContain(
      `Request ${request} has no usable host stored with it`,
    );
    expect(existsSync(marker)).toBe(false);
  });
});
