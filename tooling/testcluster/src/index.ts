import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { describe } from "vitest";
import type { IsolatedClient, IsolationFacts } from "./isolation.js";
import { isolatedClient as makeIsolatedClient } from "./isolation.js";
import type { PostgresFacts } from "./postgres.js";
import type { SlurmFacts } from "./slurm.js";

export type { IsolatedClient, IsolatedRun, IsolationFacts } from "./isolation.js";
export { isolatedClient } from "./isolation.js";

export type { PostgresFacts } from "./postgres.js";
export type { SacctRecord, SlurmFacts } from "./slurm.js";
export { runAsLoginUser, sacctRecords, slurmConfig, slurmOf, waitForSacct } from "./slurm.js";

/** Where `up` writes the cluster's connection facts. */
export const clusterFactsPath =
  process.env.SHEEPDOG_TESTCLUSTER_FILE ??
  `${process.env.SHEEPDOG_TESTCLUSTER_DIR ?? "/var/lib/sheepdog-testcluster"}/cluster.json`;

/** The connection facts of the test cluster, as `tooling/testcluster/up` writes them. */
export interface TestCluster {
  /** The machine's own hostname (the GridEngine execution host). */
  hostname: string;
  /** The head node's sshd. */
  host: string;
  port: number;
  /** The unprivileged login user that submits jobs. */
  user: string;
  /** That user's home directory. */
  home: string;
  privateKeyPath: string;
  publicKeyPath: string;
  /** A known_hosts file holding the keys of both sshd instances, as `[127.0.0.1]:port`. */
  knownHostsPath: string;
  /** A second sshd, for ProxyJump. */
  jump: { host: string; port: number; user: string };
  /**
   * Private keys of the same user whose logins see one scheduler's commands on their PATH, or
   * neither's: the head node of a Slurm-only or GridEngine-only cluster.
   */
  views: { slurm: string; gridengine: string; neither: string };
  sgeRoot: string;
  sgeCell: string;
  queue: string;
  slots: number;
  /** The Python the jobs run. */
  python: string;
  /**
   * Where clients in network namespaces of their own reach the head node's sshd (see
   * `isolatedClient`); null when this machine could not give it an address.
   */
  isolation: IsolationFacts | null;
  /** The Slurm beside GridEngine, reached over the same sshd; null when it is not up. */
  slurm: SlurmFacts | null;
  /** The PostgreSQL for the Postgres store's tests; null when it is not up. */
  postgres: PostgresFacts | null;
}

const howToStart =
  "Start it with `sudo bash tooling/testcluster/up` (see tooling/testcluster/README.md).";

/** The schedulers of the test cluster, for suites that run over each. */
export const testSchedulers = ["gridengine", "slurm"] as const;

/** One of {@link testSchedulers}. */
export type TestScheduler = (typeof testSchedulers)[number];

/** The test cluster's facts, or `undefined` when `up` has not run on this machine. */
export function loadTestCluster(): TestCluster | undefined {
  if (!existsSync(clusterFactsPath)) return undefined;
  return JSON.parse(readFileSync(clusterFactsPath, "utf8")) as TestCluster;
}

/**
 * A `describe` for tests that need the real cluster. Without one, it skips with a loud message
 * saying how to start it; under `CI=true` a missing cluster fails instead, never skips.
 *
 * ```ts
 * describeCluster("qsub", (cluster) => { it("runs", async () => { ... }) });
 * ```
 */
export function describeCluster(name: string, body: (cluster: TestCluster) => void): void {
  const cluster = loadTestCluster();
  if (cluster) {
    describe(name, () => body(cluster));
    return;
  }
  const message = `[testcluster] No test cluster: ${clusterFactsPath} is missing. ${howToStart}`;
  if (process.env.CI === "true") {
    throw new Error(`${message} Under CI=true cluster tests must run.`);
  }
  console.warn(`\n${"!".repeat(80)}\n${message}\nSkipping "${name}".\n${"!".repeat(80)}\n`);
  describe.skip(name, () => {});
}

/**
 * How Sheepdog logs in to the head node as the cluster's user, in the names of `connect()` and
 * of `map`'s configuration (no ~/.ssh/config is read).
 */
export function loginSettings(cluster: TestCluster) {
  return {
    host: cluster.host,
    sshPort: cluster.port,
    sshUser: cluster.user,
    sshKeyfile: cluster.privateKeyPath,
    sshKnownHosts: cluster.knownHostsPath,
    sshConfig: "/dev/null",
  };
}

/** The arguments for OpenSSH's `ssh` that log in to the head node as the cluster's user. */
export function sshArgs(cluster: TestCluster): string[] {
  return [
    "-F",
    "/dev/null",
    "-i",
    cluster.privateKeyPath,
    "-o",
    "BatchMode=yes",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    `UserKnownHostsFile=${cluster.knownHostsPath}`,
    "-o",
    "StrictHostKeyChecking=yes",
    "-p",
    String(cluster.port),
    `${cluster.user}@${cluster.host}`,
  ];
}

/**
 * A TCP port nothing listens on now, below the ports the kernel hands to outgoing connections
 * (ip_local_port_range), so that no client socket can take it between the death of a server on
 * it and the start of its successor, as the tests that restart a server need.
 */
export async function unusedPort(): Promise<number> {
  let firstEphemeral = 32768;
  try {
    const range = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8");
    firstEphemeral = Number(range.trim().split(/\s+/)[0]) || firstEphemeral;
  } catch {
    // Not Linux: keep the usual start of the range.
  }
  const low = 10000;
  for (let tries = 0; tries < 100; tries++) {
    const port = low + Math.floor(Math.random() * Math.max(1, firstEphemeral - low));
    if (await canListen(port)) return port;
  }
  throw new Error(`No unused port between ${low} and ${firstEphemeral} after 100 tries.`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "0.0.0.0", () => server.close(() => resolve(true)));
  });
}

/**
 * Python statements (for the body of a function of `x`, indented by `indent`) that hold each
 * of `calls` calls until all have begun, however the scheduler staggers their tasks: each marks
 * `dir` on the head node with a file named after its `x`, then waits for the others' marks.
 * For tests that stop a server or re-run a task while calls compute side by side.
 */
export function pythonAllBegun(dir: string, calls: number, indent = "    "): string {
  const quoted = JSON.stringify(dir);
  return [
    "import os, time",
    `os.makedirs(${quoted}, exist_ok=True)`,
    `open(os.path.join(${quoted}, str(x)), "w").close()`,
    `while len(os.listdir(${quoted})) < ${calls}:`,
    "    time.sleep(0.2)",
  ]
    .map((line) => `${indent}${line}`)
    .join("\n");
}

/**
 * Whether a test may play another user (switching users needs root). CI runs as root, so there
 * such tests always run, and fail rather than skip.
 */
export const canSwitchUsers: boolean = process.getuid?.() === 0 || process.env.CI === "true";

/** A command run as the unprivileged user nobody, to its end, without blocking this process. */
export function asNobody(
  command: string,
  args: string[],
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn("runuser", ["-u", "nobody", "--", command, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (text: string) => {
    stdout += text;
  });
  child.stderr.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

/**
 * {@link loginSettings} with the cluster's `scheduler` chosen (the test cluster's head node has
 * both, so `"auto"` would refuse to guess).
 */
export function schedulerSettings(cluster: TestCluster, scheduler: TestScheduler) {
  return { ...loginSettings(cluster), scheduler };
}

/**
 * {@link loginSettings} through a key whose logins see only `view`'s commands: a head node of
 * one scheduler (or none), for `scheduler: "auto"`.
 */
export function viewSettings(cluster: TestCluster, view: keyof TestCluster["views"]) {
  return { ...loginSettings(cluster), sshKeyfile: cluster.views[view] };
}

/**
 * An isolated client (see `isolatedClient`) on the test cluster, or an error that says how to
 * give the cluster the address such clients reach it by.
 */
export async function isolatedClientOf(cluster: TestCluster): Promise<IsolatedClient> {
  if (!cluster.isolation) {
    throw new Error(
      "The test cluster has no address for isolated clients: run tooling/testcluster/up as root.",
    );
  }
  return makeIsolatedClient(cluster.isolation);
}
