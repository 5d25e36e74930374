// The README's picture of the dashboard, taken from a real map: 1,500 calls of a Python function
// on the test cluster's GridEngine (chunks of 10: 150 array tasks on its 4 slots), whose calls
// sleep a varied while and print a line or two, a few raising ValueError or ZeroDivisionError
// and one killing its own process (its chunk's calls die with it). The map runs with mapAsync
// in this process, whose getResults({ block: true }) waits for it (and records the dead calls
// with their cause); the dashboard (core's dashboard(), on the map's dbfile) is opened in
// headless Chromium, and once 60 to 80% of the calls have reported (and the dead chunk has
// been noticed) a task with output is selected and the whole page saved as docs/dashboard.png
// (1360 px wide). Then it waits for the map's end and removes what the run left here and on
// the head node.
//
// Needs: the test cluster (sudo bash tooling/testcluster/up), the packages built (pnpm build),
// Debian's chromium (tooling/bootstrap; SHEEPDOG_CHROMIUM names another).
// Usage: node docs/dashboard-screenshot.mjs [--out docs/dashboard.png]
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: { out: { type: "string", default: join(root, "docs", "dashboard.png") } },
});
const CHROMIUM = process.env.SHEEPDOG_CHROMIUM ?? "/usr/bin/chromium";
const CALLS = 1500;
const CHUNK_SIZE = 10;
/** The share of calls reported when the picture is taken: from the first to the last. */
const PICTURE_FROM = 0.62;
const PICTURE_BY = 0.8;

const { dashboard, getResults, mapAsync, py, shutdown } = await import(
  join(root, "packages/core/dist/index.js")
);
const { connect } = await import(join(root, "packages/deploy-ssh/dist/index.js"));
// playwright-core is the dashboard package's (dev) dependency.
const { chromium } = createRequire(join(root, "packages/dashboard/package.json"))(
  "playwright-core",
);

const simulate = py`
def simulate(seed):
    import os, random, time
    rng = random.Random(seed)
    steps = rng.randint(3, 9)
    print(f"seed {seed}: {steps} steps")
    pause = rng.random() * 0.05 + (0.4 if seed % 97 == 0 else 0)
    time.sleep(pause)
    if seed == 134:
        os.kill(os.getpid(), 9)
    if seed % 211 == 17:
        raise ValueError("grid spacing must be positive")
    energy = sum(rng.gauss(0, 1) for _ in range(steps)) / (seed % 500 - 123)
    print(f"seed {seed}: energy {energy:.4f} after {pause * 1000:.0f} ms")
    return round(energy, 6)
`;

/** How to log in to the test cluster's head node (as tooling/testcluster's loginSettings). */
function testClusterLogin() {
  const path = `${process.env.SHEEPDOG_TESTCLUSTER_DIR ?? "/var/lib/sheepdog-testcluster"}/cluster.json`;
  if (!existsSync(path)) {
    console.error(`No test cluster (${path}). Start it with: sudo bash tooling/testcluster/up`);
    process.exit(2);
  }
  const cluster = JSON.parse(readFileSync(path, "utf8"));
  return {
    host: cluster.host,
    sshPort: cluster.port,
    sshUser: cluster.user,
    sshKeyfile: cluster.privateKeyPath,
    sshKnownHosts: cluster.knownHostsPath,
    sshConfig: "/dev/null",
  };
}

/** Waits until neither scheduler has a job of anyone, so that the map has the 4 slots. */
async function waitForIdleCluster(remote) {
  for (let said = false; ; said = true) {
    const { stdout } = await remote.exec("qstat -u '*'; squeue -h 2>/dev/null");
    if (stdout.trim() === "") return;
    if (!said) console.error("Waiting for the cluster's queue to empty…");
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

/** The number a stat of the request's page shows (`done`, `failed`). */
async function stat(page, name) {
  const text = await page.locator(`.stat.${name} .stat-value`).textContent();
  return Number((text ?? "").replace(/,/g, ""));
}

/**
 * Waits until PICTURE_FROM of the calls have reported and the dead chunk shows, or PICTURE_BY
 * have (then says what is missing); resolves with the share reported.
 */
async function waitForPictureTime(page) {
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    if (Date.now() > deadline) throw new Error("The map did not get far in ten minutes.");
    const reported = ((await stat(page, "done")) + (await stat(page, "failed"))) / CALLS;
    const dead = (await page.locator(".dead-group").count()) > 0;
    if ((reported >= PICTURE_FROM && dead) || reported >= PICTURE_BY) {
      if (!dead) console.error("The dead chunk is not on the page yet.");
      return reported;
    }
    await page.waitForTimeout(200);
  }
}

/** Opens the dashboard at request `id`, picks a task with output and saves the picture. */
async function takePicture(url, id) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  try {
    const context = await browser.newContext({
      viewport: { width: 1360, height: 900 },
      deviceScaleFactor: 1,
    });
    const page = await context.newPage();
    const problems = [];
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(message.text());
    });
    page.on("pageerror", (error) => problems.push(error.message));
    await page.goto(url);
    await page.goto(`${new URL(url).origin}/#/requests/${id}`);
    await page.locator(".stat.done .stat-value").waitFor();
    const reported = await waitForPictureTime(page);
    await page.locator(".slowest tbody tr button").first().click();
    await page.locator(".task-panel pre.log").waitFor();
    await page.waitForTimeout(800);
    await page.screenshot({ path: values.out, fullPage: true });
    if (problems.length > 0) console.error(`The page said: ${problems.join("; ")}`);
    return reported;
  } finally {
    await browser.close();
  }
}

const login = testClusterLogin();
const dir = mkdtempSync(join(tmpdir(), "sheepdog-screenshot-"));
const sshDir = `.sheepdog-screenshot-${randomBytes(4).toString("hex")}`;
const config = {
  ...login,
  scheduler: "gridengine",
  dbfile: join(dir, "simulations.sqlite"),
  sshDir,
  chunkSize: CHUNK_SIZE,
};
const remote = await connect(login);
let board;
try {
  await waitForIdleCluster(remote);
  const started = Date.now();
  const seeds = Array.from({ length: CALLS }, (_, seed) => [seed]);
  const id = await mapAsync(simulate, seeds, config);
  // Waiting for the results is what turns the killed chunk's calls into errors with their cause.
  const finished = getResults(id, { dbfile: config.dbfile, ...login, block: true });
  finished.catch(() => undefined);
  board = await dashboard({ dbfile: config.dbfile, ...login }, { port: 0 });
  const reported = await takePicture(board.url, id);
  const bytes = statSync(values.out).size;
  console.log(
    `${values.out}: ${Math.round(bytes / 1024)} KiB, taken at ${Math.round(reported * 100)}% reported, ${((Date.now() - started) / 1000).toFixed(0)} s after submitting`,
  );
  const rows = await finished;
  const failed = rows.filter(([, result]) => result === null).length;
  console.log(
    `request ${id}: ${rows.length - failed} results, ${failed} failed, in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
} finally {
  await board?.close();
  await shutdown();
  await remote.exec(`rm -rf -- ${sshDir}`).catch(() => undefined);
  await remote.close();
  rmSync(dir, { recursive: true, force: true });
}
