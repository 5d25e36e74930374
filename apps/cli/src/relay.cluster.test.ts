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

  /** Runs `sheepdog map jobs.py:square` inside the namespace, logged in at its sshd address. */
  function mapInNamespace(flags: string[], input: string, timeoutMs: number) {
    const login = [
      ["--host", client.sshHost],
      ["--ssh-port", String(cluster.port)],
      ["--ssh-user", cluster.user],
      ["--ssh-keyfile", cluster.privateKeyPath],
      ["--ssh-known-hosts", cluster.knownHostsPath],
      ["--ssh-config", "/dev/null"],
    ].flat();
    const command = [process.execPath, cli, "map", "jobs.py:square", "--args", "-"];
    return client.run("bash", ["-c", `cd "$0" && exec "$@"`, dir, ...command, ...login, ...flags], {
      input,
      timeoutMs,
    });
  }

  it("maps with no connectivity setting: every result, through the relay", async () => {
    const flags = ["--scheduler", "slurm", "--dbfile", join(dir, "cli.sqlite")];
    const run = await mapInNamespace(flags, "[1]\n[2]\n[3]\n", 180_000);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toBe("1\n4\n9\n");
    expect(run.stderr).toMatch(/request \d+: 3\/3 done \(0 failed\)/);
  }, 240_000);

  it("with --connect direct, fails at once and names the setting", async () => {
    const flags = ["--connect", "direct", "--scheduler", "gridengine"];
    const run = await mapInNamespace(
      [...flags, "--dbfile", join(dir, "direct.sqlite")],
      "[1]\n",
      60_000,
    );
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('connect is "direct", but the cluster\'s head node cannot reach');
  }, 90_000);
});
