import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** What a map-process.mjs child printed. */
export interface ChildMap {
  request: number;
  results: unknown[];
}

/** Runs map-process.mjs with `args`; resolves what it printed, rejects with its stderr. */
export function mapInChild(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<ChildMap> {
  const script = fileURLToPath(new URL("./map-process.mjs", import.meta.url));
  const child = spawn(process.execPath, [script, ...args], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (text: string) => {
    stdout += text;
  });
  child.stderr.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(JSON.parse(stdout.trim().split("\n").at(-1) as string) as ChildMap);
      else reject(new Error(`map-process.mjs ${args[0]} exited with ${code}: ${stderr.trim()}`));
    });
  });
}

/** The part of @sheepdog/core the tests use, imported from its build by path (core depends on this package). */
export interface CoreModule {
  createSheepdog(options: Record<string, unknown>): {
    map(f: unknown, args: unknown[][], options?: Record<string, unknown>): Promise<unknown[]>;
    getResults(id: number): Promise<[unknown[], unknown][]>;
    close(): Promise<void>;
  };
  py(strings: TemplateStringsArray, ...values: unknown[]): unknown;
}

export async function importCore(): Promise<CoreModule> {
  return (await import(new URL("../../../core/dist/index.js", import.meta.url).href)) as CoreModule;
}

export async function importLocal(): Promise<{
  localScheduler(options?: { concurrency?: number }): unknown;
  localRemote(): unknown;
}> {
  return import(new URL("../../../local/dist/index.js", import.meta.url).href);
}
