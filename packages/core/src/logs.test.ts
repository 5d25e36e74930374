import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sqliteStore } from "@sheepdog/store-sqlite";
import { afterAll, beforeAll, expect, it } from "vitest";
import { getLogs, map, mapSettled, py, shutdown } from "./index.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sheepdog-logs-"));
});
afterAll(async () => {
  await shutdown();
  rmSync(dir, { recursive: true, force: true });
});

it("keeps what each call printed, for getLogs, by task or all", async () => {
  const dbfile = join(dir, "logs.sqlite");
  const f = py<[number], number>`
def f(x):
    import sys
    if x % 2:
        print("odd", x)
        print("to stderr", x, file=sys.stderr)
    return x
`;
  const { request } = await mapSettled(f, [[0], [1], [2], [3]], { host: "local", dbfile });
  const logs = await getLogs(request, { dbfile });
  expect(logs).toEqual([
    { index: 1, args: [1], log: "odd 1\nto stderr 1\n" },
    { index: 3, args: [3], log: "odd 3\nto stderr 3\n" },
  ]);
  expect(await getLogs(request, { dbfile, index: 3 })).toEqual([logs[1]]);
  expect(await getLogs(request, { dbfile, index: 2 })).toEqual([]);
  await expect(getLogs(request, { dbfile, index: 4 })).rejects.toThrow(/tasks 0 to 3, not 4/);
}, 60_000);

it("tells each report's attempt, host and times: a retried call says attempt 2", async () => {
  const dbfile = join(dir, "attempts.sqlite");
  const marker = join(dir, "second-time");
  const f = py<[number], number>`
def f(x):
    import os
    if x == 1 and not os.path.exists(${JSON.stringify(marker)}):
        open(${JSON.stringify(marker)}, "w").close()
        raise ValueError("first time")
    return x * 2
`;
  expect(await map(f, [[0], [1]], { host: "local", dbfile, retries: 1, retryOn: "any" })).toEqual([
    0, 2,
  ]);
  const store = sqliteStore({ dbfile });
  try {
    const id = (await store.listRequests()).at(-1)?.id ?? 0;
    const facts = await store.getTaskFacts?.(id);
    expect(facts?.map((entry) => entry?.attempt)).toEqual([1, 2]);
    for (const entry of facts ?? []) {
      expect(entry?.host).toEqual(expect.any(String));
      expect(entry?.endedAt).toBeGreaterThanOrEqual(entry?.startedAt ?? Number.POSITIVE_INFINITY);
    }
  } finally {
    await store.close();
  }
}, 60_000);
