import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { IsolatedClient, TestCluster } from "@sheepdog/testcluster";
import {
  describeCluster,
  isolatedClientOf,
  schedulerSettings,
  viewSettings,
} from "@sheepdog/testcluster";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { DoctorReport } from "./index.js";
import { doctor } from "./index.js";

/** The built `sheepdog` command, run as a user would. */
const cli = fileURLToPath(new URL("../../../apps/cli/dist/cli.js", import.meta.url));

/** The CLI's flags for a configuration of `map` (the settings of the test cluster). */
function flagsOf(config: Record<string, unknown>): string[] {
  const names: Record<string, string> = {
    host: "--host",
    sshPort: "--ssh-port",
    sshUser: "--ssh-user",
    sshKeyfile: "--ssh-keyfile",
    sshKnownHosts: "--ssh-known-hosts",
    sshConfig: "--ssh-config",
    scheduler: "--scheduler",
    dbfile: "--dbfile",
  };
  return Object.entries(config).flatMap(([key, value]) => {
    const flag = names[key];
    if (!flag) throw new Error(`no flag for ${key}`);
    return [flag, String(value)];
  });
}

/** Runs `sheepdog doctor --json` outside any namespace; resolves with its exit code and report. */
function doctorCommand(config: Record<string, unknown>) {
  return new Promise<{ code: number | null; report: DoctorReport; stderr: string }>(
    (resolve, reject) => {
      const child = spawn(process.execPath, [cli, "doctor", "--json", ...flagsOf(config)]);
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk) => {
        stdout += chunk;
      });
      child.stderr.on("data", (chunk) => {
        stderr += chunk;
      });
      child.on("error", reject);
      child.on("close", (code) => {
        try {
          resolve({ code, report: JSON.parse(stdout) as DoctorReport, stderr });
        } catch {
          reject(new Error(`sheepdog doctor printed no report (exit ${code}): ${stderr}`));
        }
      });
    },
  );
}

function step(report: DoctorReport, id: string) {
  const found = report.steps.find((s) => s.id === id);
  if (!found) throw new Error(`no step ${id} in ${JSON.stringify(report, null, 2)}`);
  return found;
}

function statuses(report: DoctorReport): Record<string, string> {
  return Object.fromEntries(report.steps.map((s) => [s.id, s.status]));
}

describeCluster("doctor on the test cluster", (cluster: TestCluster) => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "sheepdog-doctor-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("on GridEngine every step passes, the one-call map included", async () => {
    const report = await doctor({
      ...schedulerSettings(cluster, "gridengine"),
      dbfile: join(dir, "gridengine.sqlite"),
    });
    expect(statuses(report), JSON.stringify(report, null, 2)).toEqual({
      configuration: "ok",
      ssh: "ok",
      scheduler: "ok",
      python: "ok",
      direct: "ok",
      relay: "ok",
      map: "ok",
    });
    expect(report.ok).toBe(true);
    expect(step(report, "scheduler").detail).toMatch(
      new RegExp(
        `^gridengine, as "scheduler" says; its commands answer \\(${cluster.slots} slots\\)$`,
      ),
    );
    expect(step(report, "map").detail).toMatch(
      new RegExp(`ran on ${cluster.hostname} with Python 3\\.\\d+\\.\\d+ and reported back`),
    );
  }, 240_000);

  it("a login that sees no scheduler: the scheduler step fails naming scheduler, exit 1", async () => {
    const { code, report } = await doctorCommand({
      ...viewSettings(cluster, "neither"),
      dbfile: join(dir, "neither.sqlite"),
    });
    expect(code).toBe(1);
    expect(report.ok).toBe(false);
    const scheduler = step(report, "scheduler");
    expect(scheduler.status).toBe("failed");
    expect(scheduler.detail).toContain("has neither sbatch (Slurm) nor qsub (GridEngine)");
    expect(scheduler.detail).toContain('set scheduler: "slurm" or "gridengine"');
    expect(scheduler.fix).toMatch(/^Set scheduler \("gridengine" or "slurm"; --scheduler/);
    expect(step(report, "map")).toMatchObject({
      status: "skipped",
      detail: "it needs the scheduler (above)",
    });
  }, 120_000);

  it("an unknown host key: the SSH step fails naming sshKnownHosts, exit 1", async () => {
    const empty = join(dir, "empty_known_hosts");
    writeFileSync(empty, "");
    const { code, report } = await doctorCommand({
      ...schedulerSettings(cluster, "gridengine"),
      sshKnownHosts: empty,
      dbfile: join(dir, "unknown-key.sqlite"),
    });
    expect(code).toBe(1);
    expect(report.ok).toBe(false);
    const ssh = step(report, "ssh");
    expect(ssh.status).toBe("failed");
    expect(ssh.detail).toContain(`is not in ${empty}`);
    expect(ssh.detail).toContain("or set sshKnownHosts.");
    expect(ssh.fix).toContain(`ssh-keyscan -p ${cluster.port}`);
    expect(ssh.fix).toContain("sshKnownHosts (--ssh-known-hosts");
    expect(report.steps.slice(2).map((s) => s.status)).toEqual(Array(5).fill("skipped"));
  }, 120_000);

  describeIsolated(cluster, () => dir);
});

/** From a client the cluster cannot reach: direct fails, the relay works, a map would work. */
function describeIsolated(cluster: TestCluster, dir: () => string): void {
  let client: IsolatedClient;
  beforeAll(async () => {
    client = await isolatedClientOf(cluster);
  });
  afterAll(async () => {
    await client?.close();
  });

  it("from an isolated client: direct fails, relayed passes, ok, and sheepdog doctor exits 0", async () => {
    const config = {
      ...schedulerSettings(cluster, "gridengine"),
      host: client.sshHost,
      dbfile: join(dir(), "isolated.sqlite"),
    };
    const run = await client.run(
      process.execPath,
      [cli, "doctor", "--json", "--timeout", "180", ...flagsOf(config)],
      { timeoutMs: 230_000 },
    );
    const report = JSON.parse(run.stdout) as DoctorReport;
    expect(statuses(report), run.stderr).toEqual({
      configuration: "ok",
      ssh: "ok",
      scheduler: "ok",
      python: "ok",
      direct: "failed",
      relay: "ok",
      map: "ok",
    });
    expect(step(report, "direct").detail).toMatch(
      /^the head node cannot reach this machine's server at http:\/\/\S+ \(cannot connect \([^)]*\)\), so the workers go through the relay \(connect is "auto"\)$/,
    );
    expect(report.ok).toBe(true);
    expect(run.status).toBe(0);
  }, 240_000);
}
