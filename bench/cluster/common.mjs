// What the cluster benchmarks share: the test cluster's facts, the same SSH settings for
// Sheepdog's map and for the bare qsub it is measured against, the floor itself, and a wait
// for an idle cluster (other test runs share its 4 slots).
import { existsSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const root = join(here, "..", "..");

/** The test cluster's facts (tooling/testcluster), or an exit with how to start it. */
export function loadCluster() {
  const path =
    process.env.SHEEPDOG_TESTCLUSTER_FILE ??
    `${process.env.SHEEPDOG_TESTCLUSTER_DIR ?? "/var/lib/sheepdog-testcluster"}/cluster.json`;
  if (!existsSync(path)) {
    console.error(`No test cluster (${path}). Start it with: sudo bash tooling/testcluster/up`);
    process.exit(2);
  }
  return JSON.parse(readFileSync(path, "utf8"));
}

/** deploy-ssh's connect options for the head node: what map's config below resolves to. */
export function sshOptions(cluster) {
  return {
    host: cluster.host,
    sshPort: cluster.port,
    sshUser: cluster.user,
    sshKeyfile: cluster.privateKeyPath,
    sshKnownHosts: cluster.knownHostsPath,
    sshConfig: "/dev/null",
  };
}

/** The map configuration for the head node, with its results in `dbfile`. */
export function mapConfig(cluster, dbfile, scheduler = "gridengine") {
  return { ...sshOptions(cluster), scheduler, dbfile };
}

/** The trivial function every cluster benchmark maps, made with core's `py`. */
export function trivial(py) {
  return py`
def f(x):
    return x
`;
}

/** Where the floor's job files go, relative to the remote home. */
export const FLOOR_DIR = ".sheepdog-bench";
const EMPTY_SCRIPT = new TextEncoder().encode(
  "#!/usr/bin/python3\n# An empty Python job: the cluster's floor.\n",
);

/** The command that submits the empty script as an array of `tasks` and waits for its end. */
const floorCommands = {
  gridengine: (tasks, dir) =>
    `qsub -sync y -t 1-${tasks} -S /usr/bin/python3 -wd ${dir} -o ${dir} -e ${dir} -N sheepdog_floor empty.py`,
  slurm: (tasks) =>
    `sbatch --wait --array=1-${tasks} --job-name=sheepdog_floor --output=sheepdog_floor.o%A.%a --error=sheepdog_floor.e%A.%a empty.py`,
};

/**
 * The cluster's floor for `tasks` array tasks, over a new SSH connection like a map's: connect,
 * upload an empty python3 script, submit it as an array and wait for every task's end
 * (GridEngine's `qsub -sync y -t 1-N`, Slurm's `sbatch --wait --array=1-N`), close. Resolves
 * the seconds it took; rejects when the submission fails.
 */
export async function floor(connect, options, tasks, scheduler = "gridengine") {
  const started = performance.now();
  const remote = await connect(options);
  try {
    await remote.mkdir(FLOOR_DIR, 0o700);
    await remote.upload(`${FLOOR_DIR}/empty.py`, EMPTY_SCRIPT, 0o600);
    const dir = `$HOME/${FLOOR_DIR}`;
    const result = await remote.exec(`cd ${FLOOR_DIR} && ${floorCommands[scheduler](tasks, dir)}`, {
      timeoutMs: 30 * 60_000,
    });
    if (result.code !== 0) {
      throw new Error(
        `the ${scheduler} floor failed (exit ${result.code}): ${result.stderr || result.stdout}`,
      );
    }
  } finally {
    await remote.close();
  }
  return (performance.now() - started) / 1000;
}

/**
 * Waits (up to `timeoutMs`) until no job of any user is in the cluster, so that a measurement
 * has the 4 slots to itself. Resolves { waitedMs, idle }: idle false when it gave up.
 */
export async function waitForIdle(remote, timeoutMs = 300_000) {
  const started = Date.now();
  for (;;) {
    // Both schedulers share the machine's cores: a measurement waits for both to be empty.
    const { stdout } = await remote.exec("qstat -u '*'; squeue -h");
    if (stdout.trim() === "") return { waitedMs: Date.now() - started, idle: true };
    if (Date.now() - started > timeoutMs) return { waitedMs: Date.now() - started, idle: false };
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/**
 * Removes what the floor and the maps of `dbfiles` left on the head node: the floor's directory,
 * and each map's job script and output files (named after the job, in its directory).
 */
export async function cleanRemote(remote, dbfiles = []) {
  const { sqliteStore } = await import(join(root, "packages/store-sqlite/dist/index.js"));
  const patterns = [`${FLOOR_DIR}/sheepdog_floor.*`, `${FLOOR_DIR}/empty.py`];
  for (const dbfile of dbfiles) {
    if (!existsSync(dbfile)) continue;
    const store = sqliteStore({ dbfile });
    try {
      for (const { meta } of await store.listRequests()) {
        const job = meta.job;
        if (
          job?.name &&
          /^[A-Za-z0-9_.-]+$/.test(job.name) &&
          /^[A-Za-z0-9_./-]+$/.test(job.directory)
        ) {
          patterns.push(`${job.directory}/${job.name}.*`);
        }
      }
    } finally {
      await store.close();
    }
  }
  for (let i = 0; i < patterns.length; i += 200) {
    await remote.exec(`rm -f ${patterns.slice(i, i + 200).join(" ")}; true`);
  }
}

/**
 * Ends a benchmark that ran maps in its own process: Sheepdog shut down, then the job files its
 * requests left on the head node and its local directory removed.
 */
export async function endRun(shutdown, cluster, dir, dbfile) {
  await shutdown();
  const { connect } = await import(join(root, "packages/deploy-ssh/dist/index.js"));
  const remote = await connect(sshOptions(cluster));
  await cleanRemote(remote, [dbfile]).catch(() => {});
  await remote.close();
  rmSync(dir, { recursive: true, force: true });
}
