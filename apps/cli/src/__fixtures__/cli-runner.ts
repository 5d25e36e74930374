import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import type { TestCluster } from "@sheepdog/testcluster";
import { sshArgs } from "@sheepdog/testcluster";

const run = promisify(execFile);

/** The built `sheepdog` binary. */
export const cli = join(import.meta.dirname, "../../dist/cli.js");

/** What a run of the binary ended with, whatever its exit code. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built binary in `cwd()` with `stdin`; resolves with its exit code and output. */
export function cliRunner(cwd: () => string, timeoutMs = 240_000) {
  return async (args: string[], stdin = ""): Promise<CliRun> => {
    const child = run(process.execPath, [cli, ...args], { cwd: cwd(), timeout: timeoutMs });
    child.child.stdin?.end(stdin);
    try {
      const { stdout, stderr } = await child;
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failure = error as { code: number; stdout: string; stderr: string };
      return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
    }
  };
}

/** The flags that log in to the test cluster's head node (no host: a request names its own). */
export function loginFlags(cluster: TestCluster): string[] {
  return [
    "--ssh-port",
    String(cluster.port),
    "--ssh-user",
    cluster.user,
    "--ssh-keyfile",
    cluster.privateKeyPath,
    "--ssh-known-hosts",
    cluster.knownHostsPath,
  ];
}

/** Runs `command` on the head node as the cluster's user; resolves with its stdout. */
export async function onHeadOf(cluster: TestCluster, command: string): Promise<string> {
  const { stdout } = await run("ssh", [...sshArgs(cluster), command], { timeout: 30_000 });
  return stdout;
}

/** The JSON lines of a command's output, parsed. */
export function jsonLines<T = Record<string, unknown>>(stdout: string): T[] {
  return stdout
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as T);
}
