// What an open dashboard costs the million: the map of bench/cluster/million.mjs (the same
// function, chunking and settings: this script runs that one), three ways per round, each in a
// process of its own after the cluster's queue has emptied:
//   none:      no page in the browser;
//   blank:     a new browser context with an `about:blank` page, opened when million.mjs says
//              its map starts (`[bench] map starts` on stderr, printed right before `map` is
//              called, so within milliseconds of where the dashboard prints its address),
//              closed when the map returns;
//   dashboard: million.mjs --dashboard (map's `dashboard: true`) and a real page on it: a new
//              context loads the address the map prints on stderr (right before submitting),
//              then the running request's own view (`#/requests/<id>`), subscribed to its
//              server-sent events until the map returns.
// The order turns each round (none, blank, dashboard; blank, dashboard, none; dashboard, none,
// blank; ...), so that no side always runs first after an idle queue. One headless Chromium,
// launched before the first run, serves every run: a page of any kind costs the browser CPU on
// the machine where the cluster's workers also run, so the dashboard is judged against the
// blank page (the browser's floor on both sides), and against no page for the browser's whole
// cost. Each dashboard run says whether its page showed progress (`page.live`): run.mjs counts
// the goal as met only when every page did.
//
// Prints a JSON line per run: its side ("none", "blank" or "dashboard"; `dashboard` says
// whether it is the last), million.mjs's measurements (time, the client's peak RSS and CPU), the
// browser's CPU over the run (in all, and by Chromium's kind of process: browser, renderer,
// gpu-process, utility, zygote), when its page was opened (seconds after million.mjs started)
// and, with the dashboard, what the page saw: events for the request, reads of its view, the
// done counts it showed, the last one, its errors, and what its main thread spent (Chromium's
// counters: all tasks, script, layout, style). With --profile-dir, when the overhead
// (the median with the dashboard over the median with the blank page, minus 1) is over
// --profile-over, one more run with the dashboard under `node --cpu-prof` (its profile in that
// directory), printed as { kind: "profiled" }.
//
// Usage: node bench/cluster/dashboard.mjs [--calls 1000000] [--rounds 3]
//          [--profile-dir DIR] [--profile-over 0.05]
//   --pairs N is the same as --rounds N.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { loadCluster, root, sshOptions, waitForIdle } from "./common.mjs";

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "1000000" },
    rounds: { type: "string", default: "3" },
    // The name of --rounds when each round had two sides.
    pairs: { type: "string" },
    "profile-dir": { type: "string" },
    "profile-over": { type: "string", default: "0.05" },
  },
});
const calls = Number(values.calls);
const rounds = Number(values.pairs ?? values.rounds);
/** The sides of a round, in round 1's order; round r starts r - 1 places further on. */
const SIDES = ["none", "blank", "dashboard"];
/** What million.mjs prints on stderr right before it calls `map`. */
const MAP_STARTS = "[bench] map starts";
const million = join(dirname(fileURLToPath(import.meta.url)), "million.mjs");
const CHROMIUM = process.env.SHEEPDOG_CHROMIUM ?? "/usr/bin/chromium";
/** The least a page must have shown for a run to count: done counts seen rising. */
const LEAST_RISES = 3;

/** Ticks of the kernel's clock per second (for /proc/<pid>/stat's times). */
const TICKS = 100;

/**
 * Chromium's kind of process, from its command line: "renderer", "gpu-process", "utility",
 * "zygote", or "browser" (the main one, which has no --type).
 */
function processKind(command) {
  return /--type=([a-z-]+)/.exec(command)?.[1] ?? "browser";
}

/**
 * CPU seconds of process `pid` and every process below it, from /proc, by Chromium's kind of
 * process: each one's user and system time, and the time of its children that have exited and
 * been reaped (a closed page's renderer, whose time would otherwise leave the sum when it
 * exits mid-run and make the count fall). The zygote's reaped children are renderers.
 */
function treeCpuByKind(pid) {
  const processes = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const command = readFileSync(`/proc/${name}/cmdline`, "utf8");
      processes.set(Number(name), {
        parent: Number(fields[1]),
        kind: processKind(command),
        own: Number(fields[11]) + Number(fields[12]),
        reaped: Number(fields[13]) + Number(fields[14]),
      });
    } catch {
      // Gone meanwhile.
    }
  }
  const inTree = (p) => {
    for (let at = p; at > 1; at = processes.get(at)?.parent ?? 0) if (at === pid) return true;
    return false;
  };
  const byKind = {};
  const add = (kind, ticks) => {
    byKind[kind] = (byKind[kind] ?? 0) + ticks / TICKS;
  };
  for (const [p, { kind, own, reaped }] of processes) {
    if (!inTree(p)) continue;
    add(kind, own);
    add(kind === "zygote" ? "renderer" : kind, reaped);
  }
  return byKind;
}

/** The sum of a {@link treeCpuByKind} count. */
const totalCpu = (byKind) => Object.values(byKind).reduce((sum, seconds) => sum + seconds, 0);

/** What each kind of process used between two {@link treeCpuByKind} counts, in seconds. */
function cpuBetween(before, after) {
  const kinds = new Set([...Object.keys(before), ...Object.keys(after)]);
  return Object.fromEntries(
    [...kinds].map((kind) => [
      kind,
      Math.round(100 * ((after[kind] ?? 0) - (before[kind] ?? 0))) / 100,
    ]),
  );
}

/** The browser's process: the child of this one that runs Chromium. */
function browserProcess() {
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const command = readFileSync(`/proc/${name}/cmdline`, "utf8");
      if (parent === process.pid && command.includes("chromium")) return Number(name);
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}

/**
 * Runs in the page before its own scripts: counts the server's events (each `requests` event's
 * rows by id: how many, the last done count) and, every 500 ms, notes the done count the
 * request's view shows when it changed.
 */
function observePage() {
  const seen = { hellos: 0, events: 0, byId: {}, shown: [] };
  window.__sheepdogBench = seen;
  const Original = window.EventSource;
  window.EventSource = class extends Original {
    constructor(...args) {
      super(...args);
      this.addEventListener("hello", () => seen.hellos++);
      this.addEventListener("requests", (message) => {
        seen.events++;
        for (const row of JSON.parse(message.data).changed) {
          seen.byId[row.id] ??= { events: 0, lastDone: 0 };
          seen.byId[row.id].events++;
          seen.byId[row.id].lastDone = row.done;
        }
      });
    }
  };
  setInterval(() => {
    const text = document.querySelector(".stat.done .stat-value")?.textContent;
    if (!text) return;
    const done = Number(text.replace(/[^0-9]/g, ""));
    if (seen.shown.at(-1)?.done !== done) seen.shown.push({ at: Date.now(), done });
  }, 500);
}

/** What the page saw, read before its context closes. */
async function pageFacts(page, id, detailReads) {
  const seen = await page.evaluate(() => window.__sheepdogBench);
  const shown = (seen?.shown ?? []).map((s) => s.done);
  let rises = 0;
  for (let i = 1; i < shown.length; i++) if (shown[i] > shown[i - 1]) rises++;
  return {
    requestId: id,
    hellos: seen?.hellos ?? 0,
    events: seen?.events ?? 0,
    requestEvents: seen?.byId[id]?.events ?? 0,
    lastEventDone: seen?.byId[id]?.lastDone ?? 0,
    detailReads: detailReads.count,
    detailMb: detailReads.bytes / 1e6,
    shownDone: shown,
    rises,
    // The last done count the page showed (once the map has returned, its server is gone).
    lastShownDone: shown.at(-1) ?? null,
  };
}

/**
 * What the page's main thread spent, in seconds, from Chromium's own counters (the DevTools
 * protocol's `Performance.getMetrics`): all its tasks, and of them script, layout and style.
 */
async function mainThreadSeconds(devtools) {
  const { metrics } = await devtools.send("Performance.getMetrics");
  const value = (name) => metrics.find((m) => m.name === name)?.value ?? null;
  return {
    tasks: value("TaskDuration"),
    script: value("ScriptDuration"),
    layout: value("LayoutDuration"),
    style: value("RecalcStyleDuration"),
  };
}

/** Counts the page's reads of a request's view (`GET /api/requests/<id>`) and their bytes. */
function countDetailReads(page) {
  const reads = { count: 0, bytes: 0 };
  page.on("response", (response) => {
    if (!/\/api\/requests\/\d+$/.test(new URL(response.url()).pathname)) return;
    reads.count++;
    response
      .request()
      .sizes()
      .then(
        (sizes) => {
          reads.bytes += sizes.responseBodySize;
        },
        () => {},
      );
  });
  return reads;
}

/**
 * Opens the dashboard at `url` in a new context: the list first (the token becomes a cookie),
 * then the newest request's view. Resolves a function that reads what the page saw and closes
 * it; `live` says whether the page showed progress (its done count rose at least
 * {@link LEAST_RISES} times, and events for the request came).
 */
async function openPage(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  await context.addInitScript(observePage);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`exception: ${error.message}`));
  page.on("console", (message) => {
    // Refused connections come once the map has returned and its dashboard is gone.
    if (message.type() !== "error" || message.text().includes("ERR_CONNECTION_REFUSED")) return;
    problems.push(`console: ${message.text()}`);
  });
  const detailReads = countDetailReads(page);
  const devtools = await context.newCDPSession(page);
  await devtools.send("Performance.enable");
  let id = null;
  let openError = null;
  const opened = (async () => {
    await page.goto(url);
    const line = page.locator(".request-line").first();
    await line.waitFor({ timeout: 120_000 });
    id = Number(await line.getAttribute("data-id"));
    await page.goto(`${new URL(url).origin}/#/requests/${id}`);
  })().catch((error) => {
    openError = String(error?.message ?? error).split("\n")[0];
  });
  return async () => {
    try {
      await opened;
      const facts = await pageFacts(page, id, detailReads);
      facts.mainThread = await mainThreadSeconds(devtools);
      const live = openError === null && facts.rises >= LEAST_RISES && facts.requestEvents > 0;
      return { ...facts, live, openError, problems };
    } finally {
      await context.close();
    }
  };
}

/**
 * Opens an `about:blank` page in a new context. Resolves a function that closes it and
 * resolves null (a blank page has nothing to report).
 */
async function openBlank(browser) {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  await page.goto("about:blank");
  return async () => {
    await context.close();
    return null;
  };
}

/**
 * One run of million.mjs on `side` ("none", "blank" or "dashboard": see the top of this file):
 * resolves its JSON line with the browser's CPU over the run, when its page was opened and
 * what the dashboard's page saw.
 */
function runMillion(browser, side, nodeFlags = []) {
  const args = [...nodeFlags, million, "--calls", String(calls)];
  if (side === "dashboard") args.push("--dashboard");
  const cpuBefore = browserPid ? treeCpuByKind(browserPid) : null;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    const spawned = performance.now();
    let stdout = "";
    let stderr = "";
    let page;
    let pageOpenedAfterSeconds = null;
    const open = (opening) => {
      pageOpenedAfterSeconds = (performance.now() - spawned) / 1000;
      page = opening;
      page.catch(() => {});
    };
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
      if (side === "blank" && !page && stderr.includes(MAP_STARTS)) open(openBlank(browser));
      const url = /\[sheepdog\] dashboard: (\S+)/.exec(stderr)?.[1];
      if (url && !page) open(openPage(browser, url));
    });
    child.on("error", reject);
    child.on("close", async (code) => {
      try {
        const cpuAfter = browserPid ? treeCpuByKind(browserPid) : null;
        const browserCpuSeconds = cpuBefore ? totalCpu(cpuAfter) - totalCpu(cpuBefore) : null;
        const browserCpuByKind = cpuBefore ? cpuBetween(cpuBefore, cpuAfter) : null;
        if (side === "dashboard" && !page) throw new Error("the map printed no dashboard address");
        const seen = page ? await (await page)() : null;
        if (code !== 0) {
          throw new Error(`million.mjs exited with ${code}: ${stderr.trim().slice(-500)}`);
        }
        const line = stdout.split("\n").find((l) => l.startsWith("{"));
        resolve({
          ...JSON.parse(line),
          browserCpuSeconds,
          browserCpuByKind,
          pageOpenedAfterSeconds,
          page: seen,
        });
      } catch (error) {
        reject(error);
      }
    });
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

const cluster = loadCluster();
const { chromium } = await import(
  join(root, "packages/dashboard/node_modules/playwright-core/index.mjs")
);
const { connect } = await import(join(root, "packages/deploy-ssh/dist/index.js"));
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
const browserPid = browserProcess();
const remote = await connect(sshOptions(cluster));
try {
  const runs = [];
  for (let round = 0; round < rounds; round++) {
    const turn = round % SIDES.length;
    for (const side of [...SIDES.slice(turn), ...SIDES.slice(0, turn)]) {
      const idle = await waitForIdle(remote);
      const load = loadavg()[0];
      const run = await runMillion(browser, side);
      const line = {
        kind: "run",
        round,
        // `pair` and `dashboard` as before the blank side, for readers of older lines.
        pair: round,
        side,
        dashboard: side === "dashboard",
        idleBefore: idle.idle,
        load,
        ...run,
      };
      runs.push(line);
      console.log(JSON.stringify(line));
    }
  }
  const secondsOf = (side) => median(runs.filter((r) => r.side === side).map((r) => r.seconds));
  const overhead = secondsOf("dashboard") / secondsOf("blank") - 1;
  if (values["profile-dir"] && overhead > Number(values["profile-over"])) {
    await waitForIdle(remote);
    const run = await runMillion(browser, "dashboard", [
      "--cpu-prof",
      "--cpu-prof-dir",
      values["profile-dir"],
    ]);
    console.log(JSON.stringify({ kind: "profiled", side: "dashboard", dashboard: true, ...run }));
  }
} finally {
  await remote.close();
  await browser.close();
}
