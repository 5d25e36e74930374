import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeSchedulerContract } from "@sheepdog/contracts/testing";
import { afterAll } from "vitest";
import { localScheduler } from "./local-scheduler.js";

const home = mkdtempSync(join(tmpdir(), "sheepdog-local-contract-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

describeSchedulerContract("local", () => localScheduler({ concurrency: 4, home }), {
  directory: join(home, "jobs"),
  timeout: 20_000,
});
