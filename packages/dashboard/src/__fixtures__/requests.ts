import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RequestId, RequestMeta, Store, StoreReport } from "@sheepdog/contracts";
import { encode, tuple } from "@sheepdog/serialise";
import type { SqliteStore } from "@sheepdog/store-sqlite";
import { sqliteStore } from "@sheepdog/store-sqlite";

/** A real SQLite store in a temporary directory, removed with it. */
export function temporaryStore(): SqliteStore & { dispose(): Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), "sheepdog-dashboard-"));
  const store = sqliteStore({ dbfile: join(dir, "sheepdog.sqlite") });
  return Object.assign(store, {
    async dispose() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  });
}

/** A request's function as core stores it: UTF-8 JSON `{ name, source }`. */
export function functionBytes(name: string): Uint8Array {
  const source = `def ${name}(a, b):\n    return a / b\n`;
  return new TextEncoder().encode(JSON.stringify({ name, source }));
}

/** What core keeps in a request's meta after its job was submitted to `scheduler` on `host`. */
export function submittedMeta(
  host: string,
  scheduler: string,
  jobId: string,
  tasks: number,
): RequestMeta {
  const job = {
    scheduler,
    id: jobId,
    tasks,
    parts: [],
    directory: ".sheepdog",
    name: "sheepdog_1",
  };
  return { connection: { host }, chunkSize: 1, pickleProtocol: 4, job, jobs: [job], port: 40123 };
}

/** A request of `tasks` calls `name(i, 1)` (task `i` gets `(i, 1)`), submitted as `meta` says. */
export async function createRequest(
  store: Store,
  name: string,
  tasks: number,
  meta: RequestMeta = submittedMeta("fear", "gridengine", "4242", tasks),
): Promise<RequestId> {
  const args = (function* () {
    for (let i = 0; i < tasks; i++) yield encode(tuple(i, 1));
  })();
  const { id } = await store.createRequest({
    func: functionBytes(name),
    ns: encode({}),
    args,
    meta,
  });
  return id;
}

/** A Python traceback as a worker reports it. */
export function traceback(type: string, message: string): string {
  return [
    "Traceback (most recent call last):",
    '  File "/home/me/.sheepdog/sheepdog_worker.py", line 412, in run_call',
    "    result = f(*args)",
    '  File "<sheepdog function>", line 2, in divide',
    `${type}: ${message}`,
    "",
  ].join("\n");
}

/** The error core records for a task that ended without reporting (see core's `wait.ts`). */
export function deathText(task: number, job: string, kind: string, cause: string): string {
  return `Task ${task} of job ${job} ended without reporting a result for these arguments [${kind}]: ${cause}.`;
}

/**
 * The reports of a request of `tasks` calls that ran one after another from `began` (ms): task
 * `i` started 100 ms after task `i - 1` and took 500 ms; every 60th raised a ValueError.
 */
export function staggeredReports(tasks: number, began: number): StoreReport[] {
  return Array.from({ length: tasks }, (_, i): StoreReport => {
    const facts = { startedAt: began + i * 100, endedAt: began + i * 100 + 500 };
    return i % 60 === 0
      ? { index: i, kind: "error", value: traceback("ValueError", "x"), facts }
      : { index: i, kind: "result", value: encode(i), facts };
  });
}
