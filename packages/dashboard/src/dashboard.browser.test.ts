/// <reference lib="dom" />
// The functions given to page.evaluate run in the browser.
import type { Server } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { StoreReport } from "@sheepdog/contracts";
import { encode } from "@sheepdog/serialise";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { WatchedPage } from "./__fixtures__/browser.js";
import { browserTestsRun, launchBrowser, screenshot, watchedPage } from "./__fixtures__/browser.js";
import {
  createRequest,
  deathText,
  staggeredReports,
  temporaryStore,
  traceback,
} from "./__fixtures__/requests.js";
import type { Dashboard, DashboardOptions } from "./dashboard.js";
import { createDashboard } from "./dashboard.js";

let browser: Browser;
let store: ReturnType<typeof temporaryStore>;
let dashboard: Dashboard | undefined;
let opened: WatchedPage[] = [];

beforeAll(async () => {
  if (browserTestsRun) browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
});

beforeEach(() => {
  store = temporaryStore();
  opened = [];
});

afterEach(async () => {
  for (const { context } of opened) await context.close();
  await dashboard?.close();
  dashboard = undefined;
  await store.dispose();
});

/** A dashboard on the test's store (polling as shipped: every 500 ms). */
async function start(options: Partial<DashboardOptions> = {}): Promise<Dashboard> {
  dashboard = await createDashboard({ store, title: "/home/me/sheepdog.sqlite", ...options });
  return dashboard;
}

/** Opens the dashboard's URL (token and all) at `hash` in a fresh browser context. */
async function open(
  hash = "",
  size?: { width?: number; height?: number; scale?: number },
): Promise<WatchedPage> {
  const watched = await watchedPage(browser, size);
  opened.push(watched);
  const response = await watched.page.goto(`${(dashboard as Dashboard).url}${hash}`);
  expect(response?.status()).toBe(200);
  expect(watched.page.url()).toBe(`${(dashboard as Dashboard).origin}/${hash}`);
  return watched;
}

/** Milliseconds until `selector`'s text matches `pattern` (fails after `timeout`). */
async function msUntilText(
  page: Page,
  selector: string,
  pattern: RegExp,
  timeout = 5_000,
): Promise<number> {
  const started = Date.now();
  await page.waitForFunction(
    ([selector, source]) => {
      const element = document.querySelector(selector as string);
      return element !== null && new RegExp(source as string).test(element.textContent ?? "");
    },
    [selector, pattern.source],
    { timeout, polling: 20 },
  );
  return Date.now() - started;
}

function results(from: number, to: number): StoreReport[] {
  return Array.from({ length: to - from }, (_, i) => ({
    index: from + i,
    kind: "result" as const,
    value: encode(from + i),
  }));
}

describe.skipIf(!browserTestsRun)("the dashboard in Chromium", () => {
  it("lists every request, loads with no console errors, and moves a row live", async () => {
    await start();
    const first = await createRequest(store, "divide", 10);
    await createRequest(store, "simulate", 3, {
      connection: { host: "local" },
      job: { scheduler: "local", id: "3141", tasks: 3 },
    });
    await store.putReports(first, results(0, 4));
    const { page, problems } = await open();
    await page.locator(".request-line").nth(1).waitFor();
    expect(await page.locator(".request-line .name").allTextContents()).toEqual([
      "simulate",
      "divide",
    ]);
    expect(await page.locator("#title").textContent()).toBe("/home/me/sheepdog.sqlite");
    const row = `.request-line[data-id="${first}"] .done-count`;
    expect(await page.locator(row).textContent()).toBe("4");
    await page.waitForSelector('#live[data-state="live"]');
    await store.putReports(first, results(4, 7));
    expect(await msUntilText(page, row, /^7$/)).toBeLessThan(1000);
    await screenshot(page, "requests");
    expect(problems).toEqual([]);
  });

  it("shows a running request's progress moving within a second of each report", async () => {
    await start();
    const id = await createRequest(store, "divide", 40);
    const { page, problems } = await open(`#/requests/${id}`);
    await msUntilText(page, ".stat.done .stat-value", /^0$/);
    await page.waitForSelector('#live[data-state="live"]');
    const delays: number[] = [];
    for (const [from, to] of [
      [0, 10],
      [10, 25],
      [25, 30],
    ] as const) {
      await store.putReports(id, results(from, to));
      delays.push(await msUntilText(page, ".stat.done .stat-value", new RegExp(`^${to}$`)));
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    console.log(`[dashboard] report -> page: ${delays.join(", ")} ms`);
    for (const delay of delays) expect(delay).toBeLessThan(1000);
    const width = await page
      .locator(".request-head .segment.done")
      .evaluate((el) => (el as HTMLElement).style.width);
    expect(width).toBe("75%");
    expect(problems).toEqual([]);
  });

  it("reads a request's task view at most every 2 s, asking with its version, while its counts follow each report", async () => {
    await start();
    const id = await createRequest(store, "divide", 40);
    const { page, problems } = await open(`#/requests/${id}`);
    await msUntilText(page, ".stat.done .stat-value", /^0$/);
    await page.waitForSelector('#live[data-state="live"]');
    const reads: string[] = [];
    page.on("request", (request) => {
      const { pathname, search } = new URL(request.url());
      if (pathname === `/api/requests/${id}`) reads.push(search);
    });
    const started = Date.now();
    for (let done = 4; done <= 20; done += 4) {
      await store.putReports(id, results(done - 4, done));
      expect(
        await msUntilText(page, ".stat.done .stat-value", new RegExp(`^${done}$`)),
      ).toBeLessThan(1000);
    }
    const seconds = (Date.now() - started) / 1000;
    expect(reads.length).toBeLessThanOrEqual(Math.ceil(seconds / 2) + 1);
    for (const search of reads) expect(search).toMatch(/^\?since=[^&]+$/);
    // Hidden, it reads nothing; shown again, it reads at once.
    await page.evaluate(() => {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
      document.dispatchEvent(new Event("visibilitychange"));
    });
    const whileHidden = reads.length;
    await store.putError(id, 30, traceback("ValueError", "x"));
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(reads.length).toBe(whileHidden);
    await page.evaluate(() => {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => false });
      document.dispatchEvent(new Event("visibilitychange"));
    });
    await msUntilText(page, ".error-group summary", /ValueError: x/, 2_000);
    expect(problems).toEqual([]);
  });

  it("shows a failing task's traceback and arguments, and a dead task's cause", async () => {
    await start();
    const id = await createRequest(store, "divide", 6);
    await store.putResult(id, 0, encode(0));
    await store.putError(id, 1, traceback("ZeroDivisionError", "division by zero"));
    await store.putError(id, 2, traceback("ZeroDivisionError", "division by zero"));
    await store.putError(
      id,
      3,
      deathText(4, "4242", "signal", "killed by signal 9 (exit status 137)"),
      { provisional: true },
    );
    const { page, problems } = await open(`#/requests/${id}`);
    const group = page.locator(".error-group").first();
    await group.waitFor();
    expect(await group.locator("summary").textContent()).toBe(
      "ZeroDivisionError: division by zero2 tasks",
    );
    expect(await group.locator("pre.traceback").textContent()).toBe(
      traceback("ZeroDivisionError", "division by zero"),
    );
    expect(await group.locator(".args code").textContent()).toBe("(1, 1)");
    const dead = page.locator(".dead-group").first();
    expect(await dead.locator("summary").textContent()).toBe(
      "signal killed by signal 9 (exit status 137)1 task",
    );
    expect(await dead.locator("pre").textContent()).toContain(
      "Task 4 of job 4242 ended without reporting",
    );
    // A new kind of error shows up live, and its task opens in the panel.
    await store.putError(id, 4, traceback("ValueError", "math domain error"));
    await msUntilText(
      page,
      ".error-group:nth-of-type(2) summary",
      /ValueError: math domain error/,
      2_000,
    );
    await page.locator(".error-group:nth-of-type(2) summary").click();
    await page.locator('.error-group button[data-task="4"]').click();
    await msUntilText(page, ".task-panel h3", /Task 4 error/);
    expect(await page.locator(".task-panel pre.traceback").textContent()).toContain(
      "ValueError: math domain error",
    );
    await screenshot(page, "errors");
    expect(problems).toEqual([]);
  });

  it("cancels a request only after confirmation, and offers no buttons without actions", async () => {
    const calls: number[] = [];
    await start({ actions: { cancel: async (request) => void calls.push(request) } });
    const id = await createRequest(store, "divide", 3);
    const { page, problems } = await open(`#/requests/${id}`);
    const cancel = page.locator('button[data-action="cancel"]');
    await cancel.waitFor();
    expect(await page.locator('button[data-action="retry-failed"]').count()).toBe(0);
    await cancel.click();
    const dialog = page.locator("dialog#confirm");
    await dialog.waitFor();
    expect(await dialog.locator("h3").textContent()).toBe(`Cancel request #${id}?`);
    await dialog.locator('button[data-answer="no"]').click();
    await dialog.waitFor({ state: "hidden" });
    expect(calls).toEqual([]);
    await cancel.click();
    await screenshot(page, "cancel-confirmation");
    await dialog.locator('button[data-answer="yes"]').click();
    await msUntilText(page, ".action-note", /^Cancelled\.$/);
    expect(calls).toEqual([id]);
    expect(problems).toEqual([]);
    await dashboard?.close();
    await start();
    const bare = await open(`#/requests/${id}`);
    await msUntilText(bare.page, ".stat.done .stat-value", /^0$/);
    expect(await bare.page.locator(".actions button").count()).toBe(0);
  });

  it("answers 401 with no data to a missing or wrong token", async () => {
    await start();
    await createRequest(store, "secret_function", 1);
    const { page } = await watchedPage(browser);
    for (const path of ["/", "/?token=not-the-token-at-all", "/api/requests", "/#/requests/1"]) {
      const response = await page.goto(`${(dashboard as Dashboard).origin}${path}`);
      expect(response?.status(), path).toBe(401);
      const text = await page.locator("body").textContent();
      expect(text).toContain("needs its token");
      expect(text).not.toContain("secret_function");
    }
    await page.context().close();
  });

  it("refuses an action posted by a page of another origin, even in a browser holding the cookie", async () => {
    const calls: number[] = [];
    await start({ actions: { cancel: async (request) => void calls.push(request) } });
    const id = await createRequest(store, "divide", 3);
    const { page } = await open(`#/requests/${id}`);
    await page.locator('button[data-action="cancel"]').waitFor();
    const key = await page.evaluate(
      async () => ((await (await fetch("/api/session")).json()) as { actionKey: string }).actionKey,
    );
    const target = `${(dashboard as Dashboard).origin}/api/requests/${id}/cancel`;
    const attacker = await attackerServer(target, key);
    try {
      const statuses: number[] = [];
      page.on("response", (response) => {
        if (response.url() === target && response.request().method() === "POST") {
          statuses.push(response.status());
        }
      });
      await page.goto(attacker.url);
      await page.waitForFunction(() => document.title === "done", undefined, { timeout: 5_000 });
      await page.waitForTimeout(300);
      expect(calls).toEqual([]);
      expect(statuses.length).toBeGreaterThan(0);
      for (const status of statuses) expect(status).toBe(403);
    } finally {
      await new Promise((resolve) => attacker.server.close(resolve));
    }
  });

  it("draws 100,000 tasks on one canvas, with a bounded number of elements", async () => {
    await start();
    const tasks = 100_000;
    const id = await createRequest(store, "simulate", tasks);
    // Results that ended over the last two hours: their rate chart takes 15 s bins.
    const ended = Date.now() - 7_200_000;
    const reports: StoreReport[] = results(0, 60_000).map((report, i) => ({
      ...report,
      facts: { startedAt: ended + i * 120 - 2_000, endedAt: ended + i * 120 },
    }));
    for (let i = 60_000; i < 64_000; i++)
      reports.push({
        index: i,
        kind: "error",
        value: traceback("ValueError", `bad input ${i % 7}`),
      });
    for (let i = 64_000; i < 64_500; i++)
      reports.push({
        index: i,
        kind: "error",
        value: deathText(i + 1, "4242", "time-limit", "over its run-time limit"),
        provisional: true,
      });
    await store.putReports(id, reports);
    const started = Date.now();
    const { page, problems } = await open(`#/requests/${id}`);
    await msUntilText(page, ".legend", /done 60,000/, 20_000);
    const loaded = Date.now() - started;
    const elements = await page.evaluate(() => document.getElementsByTagName("*").length);
    console.log(`[dashboard] 100,000 tasks: page shown in ${loaded} ms with ${elements} elements`);
    expect(elements).toBeLessThan(2_500);
    await msUntilText(page, ".rate-card .rate-note", /averaged over 15 s/);
    expect(await canvasColours(page, ".rate-card canvas")).toContain("47,158,98");
    expect(await page.locator("canvas.grid-canvas").count()).toBe(1);
    expect(await canvasColours(page)).toContain("47,158,98"); // done
    // Scrolled to the failed tasks (60,000 to 64,500 of 100,000), those rows are drawn.
    await page.locator(".grid-scroll").evaluate((el) => {
      el.scrollTop = el.scrollHeight * 0.6 - 20;
    });
    // The grid draws on the next frame after a scroll.
    const failed = await canvasColoursOnceDrawn(page, ["217,72,59", "122,61,184"]);
    expect(failed).toContain("217,72,59"); // error
    expect(failed).toContain("122,61,184"); // dead
    // Scrolled to the end, the last rows are drawn and named under the pointer.
    await page.locator(".grid-scroll").evaluate((el) => {
      el.scrollTop = el.scrollHeight;
    });
    const box = await page.locator("canvas.grid-canvas").boundingBox();
    await page.mouse.move((box?.x ?? 0) + 5, (box?.y ?? 0) + (box?.height ?? 0) - 3);
    await msUntilText(page, ".grid-tip", /^task 99,\d{3}: no report yet$/);
    await screenshot(page, "hundred-thousand-tasks");
    expect(problems).toEqual([]);
  });

  it("charts the reports per second and the throughput of a request that ended before it opened", async () => {
    const id = await createRequest(store, "divide", 300);
    const began = Date.now() - 3_600_000;
    await store.putReports(id, staggeredReports(300, began));
    await start();
    const { page, problems } = await open(`#/requests/${id}`);
    await msUntilText(page, ".rate-card .rate-note", /^By when each task ended\.$/);
    await page.locator(".rate-card .uplot").waitFor();
    await page.waitForTimeout(300);
    // Its results drawn in green, its errors in red: 300 reports in the 31 s it took.
    const colours = await canvasColours(page, ".rate-card canvas");
    expect(colours).toContain("47,158,98");
    expect(colours).toContain("217,72,59");
    expect(
      await page.locator(".stat:has(.stat-label:text-is('throughput')) .stat-value").textContent(),
    ).toBe("9.9/s");
    expect(
      await page.locator(".stat:has(.stat-label:text-is('ETA')) .stat-value").textContent(),
    ).toBe("—");
    await screenshot(page, "finished-request");
    // A request whose reports tell no times (a worker that sends none) was not counted either.
    const untimed = await createRequest(store, "divide", 2);
    await store.putReports(untimed, results(0, 2));
    await page.goto(`${(dashboard as Dashboard).origin}/#/requests/${untimed}`);
    await msUntilText(page, ".rate-card .rate-note", /^Not counted: no report tells when/);
    expect(await page.locator(".rate-card .chart").isHidden()).toBe(true);
    expect(problems).toEqual([]);
    await page.close();
    // A store that records no report times says so, rather than drawing an empty chart.
    const { getTaskFacts: _facts, getLogs: _logs, ...plain } = store;
    await dashboard?.close();
    await start({ store: { ...plain, close: () => store.close() } as typeof store });
    const bare = await open(`#/requests/${id}`);
    await msUntilText(bare.page, ".rate-card", /Report times: not recorded by this store\./);
    expect(await bare.page.locator(".rate-card .chart").isHidden()).toBe(true);
    expect(bare.problems).toEqual([]);
  });

  it("shows run times, the slowest tasks, hosts, memory and output, live", async () => {
    await start({ actions: { cancel: async () => {}, retryFailed: async () => {} } });
    const id = await createRequest(store, "simulate", 2_400);
    const { page, problems } = await open(`#/requests/${id}`, {
      width: 1440,
      height: 1000,
      scale: 2,
    });
    await msUntilText(page, ".stat.done .stat-value", /^0$/);
    const created = Date.now();
    let done = 0;
    for (let wave = 0; wave < 12; wave++) {
      const reports = realisticWave(wave, created);
      done += reports.filter((report) => report.kind === "result").length;
      await store.putReports(id, reports);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    await msUntilText(page, ".stat.done .stat-value", new RegExp(`^${done.toLocaleString("en")}$`));
    await page.locator(".timing-cards .uplot").first().waitFor();
    expect(await page.locator(".timing-cards .uplot").count()).toBe(2);
    await page.locator(".slowest tbody tr button").first().click();
    await msUntilText(page, ".task-panel h3", /Task \d+ done/);
    expect(await page.locator(".task-panel .facts").textContent()).toMatch(
      /host\s*node-\d+.*peak memory\s*\d+(\.\d)? MiB/,
    );
    expect(await page.locator(".task-panel pre.log").textContent()).toContain("step 3 of 3");
    await page.waitForTimeout(600);
    await screenshot(page, "dashboard");
    expect(problems).toEqual([]);
  });
});

/** The colours drawn on a canvas now (every 7th pixel), the grid's unless told. */
function canvasColours(page: Page, selector = "canvas.grid-canvas"): Promise<string[]> {
  return page.locator(selector).evaluate((canvas) => {
    const c = canvas as HTMLCanvasElement;
    const context = c.getContext("2d") as CanvasRenderingContext2D;
    const data = context.getImageData(0, 0, c.width, c.height).data;
    const seen = new Set<string>();
    for (let i = 0; i < data.length; i += 4 * 7)
      seen.add(`${data[i]},${data[i + 1]},${data[i + 2]}`);
    return [...seen];
  });
}

/** The grid's colours once all of `expected` are drawn, or as they are after `timeout` ms. */
async function canvasColoursOnceDrawn(
  page: Page,
  expected: string[],
  timeout = 5_000,
): Promise<string[]> {
  const until = Date.now() + timeout;
  for (;;) {
    const colours = await canvasColours(page);
    if (expected.every((colour) => colours.includes(colour)) || Date.now() > until) return colours;
    await page.waitForTimeout(50);
  }
}

/** One wave of 150 reports of a map that runs for a while: results, errors, a few deaths. */
function realisticWave(wave: number, created: number): StoreReport[] {
  const reports: StoreReport[] = [];
  for (let i = wave * 150 + ((wave * 37) % 40); i < (wave + 1) * 150; i++) {
    const startedAt = created + (i % 97) * 40 + wave * 500;
    const seconds = 0.8 + ((i * 7919) % 100) / 25 + (i % 53 === 0 ? 6 : 0);
    const facts = {
      startedAt,
      endedAt: startedAt + seconds * 1000,
      host: `node-${(i % 12) + 1}`,
      peakMemoryBytes: (80 + ((i * 31) % 400)) * 1024 * 1024,
      attempt: 1,
      log: `loading grid ${i}\nstep 1 of 3\nstep 2 of 3\nstep 3 of 3\n`,
    };
    if (i % 41 === 7)
      reports.push({
        index: i,
        kind: "error",
        value: traceback("ValueError", "grid spacing must be positive"),
        facts,
      });
    else if (i % 97 === 13)
      reports.push({ index: i, kind: "error", value: traceback("MemoryError", ""), facts });
    else if (i % 211 === 5)
      reports.push({
        index: i,
        kind: "error",
        value: deathText(
          i + 1,
          "4242",
          "out-of-memory",
          "over its memory limit of 2G (exit status 137)",
        ),
        provisional: true,
      });
    else reports.push({ index: i, kind: "result", value: encode(i * 0.5), facts });
  }
  return reports;
}

/**
 * A page on another origin (another port of 127.0.0.1) that tries to cancel `target`: a plain
 * cross-origin fetch, one with the action key in its header (which needs a preflight), and a
 * form post. Its title becomes "done" when it has tried all three.
 */
async function attackerServer(
  target: string,
  key: string,
): Promise<{ server: Server; url: string }> {
  const html = `<!doctype html><title>attacker</title>
<form id="f" method="post" action="${target}" target="sink"></form><iframe name="sink"></iframe>
<script>
(async () => {
  try { await fetch(${JSON.stringify(target)}, { method: "POST", mode: "no-cors", credentials: "include" }); } catch {}
  try { await fetch(${JSON.stringify(target)}, { method: "POST", credentials: "include", headers: { "x-sheepdog-action-key": ${JSON.stringify(key)} } }); } catch {}
  document.querySelector("iframe").addEventListener("load", () => { document.title = "done"; });
  document.getElementById("f").submit();
})();
</script>`;
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}
