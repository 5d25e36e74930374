import { existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { chromium } from "playwright-core";

/** Debian's chromium, which tooling/bootstrap installs (`SHEEPDOG_CHROMIUM` names another). */
export const CHROMIUM = process.env.SHEEPDOG_CHROMIUM ?? "/usr/bin/chromium";

/** Whether the browser tests can run here; under CI a missing browser fails them instead. */
export const browserTestsRun = existsSync(CHROMIUM) || process.env.CI === "true";

if (!existsSync(CHROMIUM)) {
  console.warn(
    `\n[sheepdog] [dashboard] ${CHROMIUM} is missing: ${process.env.CI === "true" ? "the browser tests fail" : "the browser tests are SKIPPED"}. ` +
      "Run `sudo bash tooling/bootstrap` (it installs Debian's chromium), or set SHEEPDOG_CHROMIUM.\n",
  );
}

/** Where screenshots go (gitignored; CI keeps them as artefacts). */
export const ARTIFACTS = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "test-artifacts",
);

/** Starts headless Chromium (no sandbox: the tests may run as root, and load only our page). */
export function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing. Run \`sudo bash tooling/bootstrap\` to install Debian's chromium.`,
    );
  }
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
}

/** A page in a fresh context (no cookies), and what went wrong in it. */
export interface WatchedPage {
  context: BrowserContext;
  page: Page;
  /** Console errors, uncaught exceptions, failed loads and answers of 400 or more, in order. */
  problems: string[];
}

/** A new page of its own context, with everything that goes wrong in it collected. */
export async function watchedPage(
  browser: Browser,
  options: { width?: number; height?: number; scale?: number } = {},
): Promise<WatchedPage> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1360, height: options.height ?? 900 },
    deviceScaleFactor: options.scale ?? 1,
  });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`exception: ${error.message}`));
  page.on("requestfailed", (request) => {
    // A stream of events cut when the page goes away is no failure of the page.
    if (!request.url().endsWith("/api/events")) problems.push(`failed: ${request.url()}`);
  });
  page.on("response", (response) => {
    if (response.status() >= 400) problems.push(`${response.status()}: ${response.url()}`);
  });
  return { context, page, problems };
}

/** Saves a screenshot of the whole page as test-artifacts/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}
