import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { IsolatedClient } from "@sheepdog/testcluster";
import { describeCluster, isolatedClientOf } from "@sheepdog/testcluster";
import { afterAll, beforeAll, expect, it } from "vitest";

const cli = join(import.meta.dirname, "../dist/cli.js");

describeCluster("the sheepdog command from a client the cluster cannot reach", (cluster) => {
  let dir: string;
  let client: IsolatedClient;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "sheepdog-cli-relay-"));
    writeFileSync(join(dir, "jobs.py"), "def square(x):\n    return x * x\n");
    client = await isolatedClientOf(cluster);
  });
  afterAll(async () => {
    await client?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("maps with no connectivity setting: every result, through the relay", async () => {
    const flags = [
      ["--host", client.sshHost],
      ["--scheduler", "slurm"],
      ["--ssh-port", String(cluster.port)],
      ["--ssh-user", cluster.user],
      ["--ssh-keyfile", cluster.privateKeyPath],
      ["--ssh-known-hosts", cluster.knownHostsPath],
      ["--ssh-config", "/dev/null"],
      ["--dbfile", join(dir, "cli.sqlite")],
    ].flat();
    const command = [process.execPath, cli, "map", "jobs.py:square", "--args", "-", ...flags];
    const run = await client.run("bash", ["-c", `cd "$0" && exec "$@"`, dir, ...command], {
      input: "[1]\n[2]\n[3]\n",
      timeoutMs: 180_000,
    });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toBe("1\n4\n9\n");
    expect(run.stderr).toMatch(/request \d+: 3\/3 done \(0 failed\)/);
  }, 240_000);

  it("with --connect direct, fails at once and names the setting", async () => {
    const run = await client.run(
      "bash",
      [
        "-c",
        `cd "$0" && exec "$@"`,
        dir,
        process.execPath,
        cli,
        "map",
        "jobs.py:square",
        "--args",
        "-",
        "--connect",
        "direct",
        "--host",
        client.sshHost,
        "--scheduler",
        "gridengine",
        "--ssh-port",
        String(cluster.port),
        "--ssh-user",
        cluster.user,
        "--ssh-keyfile",
        cluster.privateKeyPath,
        "--ssh-known-hosts",
        cluster.knownHostsPath,
        "--ssh-config",
        "/dev/null",
        "--dbfile",
        join(dir, "direct.sqlite"),
      ],
      { input: "[1]\n", timeoutMs: 60_000 },
    );
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('connect is "direct", but the cluster\'s head node cannot reach');
  }, 90_000);
});
