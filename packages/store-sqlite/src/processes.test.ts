import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, expect, it } from "vitest";
import { sqliteStore } from "./sqlite-store.js";

const writer = fileURLToPath(new URL("./__fixtures__/writer.mjs", import.meta.url));
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "sheepdog-processes-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

it("takes 10,000 results from each of 4 processes sharing one file (each also creating a request), losing none", async () => {
  const workers = 4;
  const perWorker = 10_000;
  const total = workers * perWorker;
  const file = join(dir, "shared.sqlite");
  await using store = sqliteStore({ dbfile: file });
  const { id } = await store.createRequest({
    func: new Uint8Array([1]),
    ns: new Uint8Array([2]),
    args: Array.from({ length: total }, (_, i) => new TextEncoder().encode(`arg ${i}`)),
  });

  const startAt = String(Date.now() + 1500);
  const runs = await Promise.all(
    Array.from({ length: workers }, (_, w) =>
      run([file, String(id), String(w), String(workers), String(perWorker), startAt]),
    ),
  );
  for (const { code, stderr } of runs) {
    expect(stderr).toBe("");
    expect(code).toBe(0);
  }

  // Every task was won by exactly one process, and holds that process's value.
  const winner = new Int8Array(total).fill(-1);
  let claims = 0;
  const created: [worker: number, id: number][] = [];
  for (const { stdout } of runs) {
    const { worker, won, mine, argsIntact } = JSON.parse(stdout) as {
      worker: number;
      won: string;
      mine: number;
      argsIntact: boolean;
    };
    // Each process also created a request of 2,000 tasks while the others did.
    expect(argsIntact).toBe(true);
    created.push([worker, mine]);
    const bits = Buffer.from(won, "base64");
    for (let i = 0; i < total; i += 1) {
      if (((bits[i >> 3] as number) >> (i & 7)) & 1) {
        claims += 1;
        expect(winner[i], `task ${i} was stored twice`).toBe(-1);
        winner[i] = worker;
      }
    }
  }
  // 44,000 reports were sent (each process also raced its neighbour for 1,000 tasks); exactly
  // one per task was stored.
  expect(claims).toBe(total);

  expect(new Set(created.map(([, mine]) => mine)).size).toBe(workers);
  for (const [worker, mine] of created) {
    const request = await store.getRequest(mine);
    expect([new TextDecoder().decode(request.func), request.tasks]).toEqual([`f${worker}`, 2000]);
    const last = await store.getArgs(mine, 1999);
    expect(new TextDecoder().decode(last[0])).toBe(`w${worker}-arg-1999`);
  }

  expect(await store.counts(id)).toEqual({ tasks: total, results: total, errors: 0 });
  const results = await store.getResults(id);
  const decoder = new TextDecoder();
  const wrong = results.filter(
    (r) => r.result === null || decoder.decode(r.result) !== `w${winner[r.index]}-${r.index}`,
  );
  expect(wrong).toEqual([]);
}, 120_000);
