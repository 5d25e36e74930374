import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeCluster } from "@sheepdog/testcluster";
import type { Browser, Page } from "playwright-core";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { cli, cliRunner, jsonLines, loginFlags, onHeadOf } from "./__fixtures__/cli-runner.js";

const chromiumPath = process.env.SHEEPDOG_CHROMIUM ?? "/usr/bin/chromium";
const artifacts = join(import.meta.dirname, "../test-artifacts");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeCluster("the dashboard's buttons on the test cluster's GridEngine", (cluster) => {
  let cwd: string;
  let browser: Browser;
  let dashboard: ReturnType<typeof spawn> | undefined;
  const marker = `/tmp/sheepdog-dashboard-retry-${process.pid}`;
  const sshFlags = loginFlags(cluster);
  const flags = ["--host", cluster.host, "--scheduler", "gridengine", ...sshFlags];

  const sheepdog = cliRunner(() => cwd);

  const onHead = (command: string) => onHeadOf(cluster, command);

  interface Listed {
    id: number;
    results: number;
    errors: number;
    tasks: number;
    meta: Record<string, unknown>;
  }

  async function requests(): Promise<Listed[]> {
    const { stdout } = await sheepdog(["requests", "--json"]);
    return jsonLines<Listed>(stdout);
  }

  /** Starts `sheepdog dashboard`; resolves with the address it printed. */
  async function startDashboard(): Promise<string> {
    const child = spawn(process.execPath, [cli, "dashboard", ...sshFlags], { cwd });
    dashboard = child;
    return new Promise<string>((resolve, reject) => {
      let stdout = "";
      let stderr = "";
      child.stderr?.on("data", (chunk) => {
        stderr += chunk;
      });
      child.stdout?.on("data", (chunk) => {
        stdout += chunk;
        const url = /^(http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]+)\n/.exec(stdout)?.[1];
        if (url) resolve(url);
      });
      child.on("close", (code) =>
        reject(new Error(`sheepdog dashboard ended (${code}): ${stderr}`)),
      );
    });
  }

  /** A page of the dashboard at `hash`, once the token has become its cookie. */
  async function open(url: string, hash: string): Promise<{ page: Page; problems: string[] }> {
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(message.text());
    });
    page.on("pageerror", (error) => problems.push(error.message));
    await page.goto(url);
    await page.goto(`${new URL(url).origin}/${hash}`);
    return { page, problems };
  }

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), "sheepdog-cli-dashboard-"));
    writeFileSync(
      join(cwd, "jobs.py"),
      [
        "import os, time",
        "",
        "def nap(seconds):",
        "    time.sleep(seconds)",
        "    return seconds",
        "",
        "def mixed(x):",
        "    if x == 0:",
        "        raise ValueError('no zero here')",
        "    if x == 1:",
        "        os.kill(os.getpid(), 9)",
        "    print('working on', x)",
        "    time.sleep(2)",
        "    return x * x",
        "",
        "def odd_fails(x):",
        `    if x % 2 and not os.path.exists(${JSON.stringify(marker)}):`,
        "        raise ValueError('odd %d' % x)",
        "    return x * 10",
        "",
      ].join("\n"),
    );
    if (!existsSync(chromiumPath))
      throw new Error(`${chromiumPath} is missing: run tooling/bootstrap.`);
    browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
  });
  afterAll(async () => {
    dashboard?.kill("SIGINT");
    await browser?.close();
    rmSync(cwd, { recursive: true, force: true });
    await onHead(`rm -f ${marker}`).catch(() => undefined);
  });

  /** The number a stat of the page shows (`done`, `failed`, ...). */
  async function stat(page: Page, name: string): Promise<number> {
    const text = await page.locator(`.stat.${name} .stat-value`).textContent();
    return Number((text ?? "").replace(/,/g, ""));
  }

  it("map --dashboard: the page shows a real map's progress moving, then its traceback, its dead task's cause and what it printed", async () => {
    const args = Array.from({ length: 22 }, (_, i) => `[${i}]`).join("\n");
    const child = spawn(
      process.execPath,
      [cli, "map", "jobs.py:mixed", "--args", "-", "--dashboard", "--chunk-size", "1", ...flags],
      { cwd },
    );
    child.stdin?.end(args);
    let stderr = "";
    const ended = new Promise<number | null>((resolve) => child.on("close", resolve));
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr?.on("data", (chunk) => {
        stderr += chunk;
        const found = /dashboard: (http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]+)/.exec(stderr);
        if (found?.[1]) resolve(found[1]);
      });
      void ended.then(() => reject(new Error(`sheepdog map ended first: ${stderr}`)));
    });
    const id = await new Promise<number>((resolve) => {
      const look = () => {
        const found = /request (\d+):/.exec(stderr);
        if (found?.[1]) resolve(Number(found[1]));
        else setTimeout(look, 100);
      };
      look();
    });
    const { page, problems } = await open(url, `#/requests/${id}`);
    await page.locator(".stat.done .stat-value").waitFor();
    // Progress moves on the page while the map runs: the done count is seen to grow.
    const seen = new Set<number>();
    for (let i = 0; i < 2400 && seen.size < 3; i++) {
      const done = await stat(page, "done");
      if (done < 22) seen.add(done);
      await sleep(100);
    }
    expect(seen.size).toBeGreaterThanOrEqual(3);
    expect(await ended).toBe(1);
    expect(problems.filter((p) => !/events|ERR_CONNECTION_REFUSED/.test(p))).toEqual([]);

    // After the map, the dbfile's own dashboard shows what happened.
    const later = await startDashboard();
    const after = await open(later, `#/requests/${id}`);
    const group = after.page.locator(".error-group").first();
    await group.waitFor();
    expect(await group.locator("pre.traceback").textContent()).toContain(
      "ValueError: no zero here",
    );
    const dead = after.page.locator(".dead-group").first();
    await dead.waitFor();
    expect(await dead.textContent()).toContain("killed by signal 9");
    await after.page.locator(".slowest tbody tr button").first().click();
    await after.page.locator(".task-panel pre.log").waitFor();
    expect(await after.page.locator(".task-panel pre.log").textContent()).toMatch(/working on \d+/);
    mkdirSync(artifacts, { recursive: true });
    await after.page.screenshot({
      path: join(artifacts, "dashboard-real-map.png"),
      fullPage: true,
    });
    expect(after.problems).toEqual([]);
    dashboard?.kill("SIGINT");
    dashboard = undefined;
  }, 300_000);

  it("cancel really cancels the request's job, and retry runs its failed tasks again as a new request", async () => {
    const failing = await sheepdog(
      ["map", "jobs.py:odd_fails", "--args", "-", ...flags],
      "[1]\n[2]\n[3]\n[4]\n",
    );
    expect(failing.code).toBe(1);
    const submitted = await sheepdog(
      ["map", "jobs.py:nap", "--args", "-", "--async", ...flags],
      "[120]\n[120]\n",
    );
    expect(submitted.code).toBe(0);
    const napping = Number(submitted.stdout.trim());
    const failingId = Number(/request (\d+):/.exec(failing.stderr)?.[1]);
    const failed = (await requests()).find((r) => r.id === failingId);
    expect(failed).toMatchObject({ tasks: 4, results: 2, errors: 2 });
    const url = await startDashboard();

    // Cancel: the scheduler's queue no longer holds the job.
    const job = ((await requests()).find((r) => r.id === napping)?.meta.job as { id?: string })?.id;
    expect(job).toMatch(/^\d+$/);
    expect(await onHead(`qstat -j ${job} >/dev/null 2>&1 && echo queued || echo gone`)).toContain(
      "queued",
    );
    const { page, problems } = await open(url, `#/requests/${napping}`);
    await page.locator('button[data-action="cancel"]').click();
    await page.locator('dialog#confirm button[data-answer="yes"]').click();
    await page
      .locator(".action-note")
      .filter({ hasText: /^Cancelled\.$/ })
      .waitFor({ timeout: 60_000 });
    let gone = "";
    for (let i = 0; i < 40 && !gone.includes("gone"); i++) {
      gone = await onHead(`qstat -j ${job} >/dev/null 2>&1 && echo queued || echo gone`);
      if (!gone.includes("gone")) await sleep(500);
    }
    expect(gone).toContain("gone");
    expect((await requests()).find((r) => r.id === napping)?.meta.cancelled).toMatchObject({
      reason: "cancelled",
    });

    // Retry: the odd arguments run again, now that they succeed, as a request of their own.
    await onHead(`touch ${marker}`);
    const retry = await open(url, `#/requests/${failed?.id}`);
    await retry.page.locator('button[data-action="retry-failed"]').click();
    await retry.page.locator('dialog#confirm button[data-answer="yes"]').click();
    const note = retry.page.locator(".action-note");
    await note.filter({ hasText: /[^…]/ }).waitFor({ timeout: 120_000 });
    expect(await note.textContent()).toBe("Retry submitted.");
    let again:
      | { id: number; results: number; tasks: number; meta: Record<string, unknown> }
      | undefined;
    for (let i = 0; i < 240; i++) {
      again = (await requests()).find(
        (r) => (r.meta.retryOf as { request?: number } | undefined)?.request === failed?.id,
      );
      if (again && again.results === again.tasks) break;
      await sleep(500);
    }
    expect(again?.meta.retryOf).toEqual({ request: failed?.id, indices: [0, 2] });
    const results = await sheepdog(["results", String(again?.id), "--json"]);
    expect(jsonLines(results.stdout)).toEqual([
      { index: 0, args: [1], result: 10 },
      { index: 1, args: [3], result: 30 },
    ]);
    mkdirSync(artifacts, { recursive: true });
    await retry.page.screenshot({ path: join(artifacts, "dashboard-retry.png"), fullPage: true });
    expect([...problems, ...retry.problems]).toEqual([]);
  }, 300_000);
});
