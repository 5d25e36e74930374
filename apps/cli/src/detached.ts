import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import type { SheepdogServer, StagedRequest } from "@sheepdog/core";
import { cleanup, getErrors, getResults, listRequests, serve } from "@sheepdog/core";
import { exitCodes, requestId, table, timeText, write } from "./common.js";
import { jsonLine } from "./json-values.js";
import type { CliIo } from "./main.js";
import { requestConfig, settings } from "./settings.js";

type Values = Record<string, string | boolean | string[] | undefined>;

/**
 * `sheepdog attach <id>`: serves the request's workers while it runs (those still running
 * report live), brings home what they spooled, shows progress until every task has its report,
 * then writes the results as `map` does (a JSON line each, in argument order).
 */
export async function attachCommand(
  io: CliIo,
  values: Values,
  positionals: string[],
): Promise<number> {
  const id = requestId(positionals, "attach");
  const resolved = await settings(values, io.env, io.cwd, true);
  const { config } = resolved;
  const login = requestConfig(resolved);
  const server = await serveWorkers(io, id, login, await listenHostOf(id, config.dbfile));
  try {
    const rows = await getResults(id, { ...login, block: true, verbose: true, signal: io.signal });
    const text = rows.map(([, result]) => `${jsonLine(result)}\n`).join("");
    if (typeof values.out === "string") writeFileSync(resolve(io.cwd, values.out), text);
    else if (text !== "") write(io.stdout, text);
  } finally {
    await server?.close();
  }
  const failed = (await getErrors(id, { dbfile: config.dbfile })).length;
  if (failed === 0) return exitCodes.ok;
  write(
    io.stderr,
    `[sheepdog] ${failed} tasks failed. See the tracebacks with "sheepdog errors ${id} --dbfile ${config.dbfile}".`,
  );
  return exitCodes.failed;
}

/**
 * A server for the request's workers on their port (and their relay, if they had one), so
 * that the tasks still running report live; when the port is taken, the spool does.
 */
async function serveWorkers(
  io: CliIo,
  id: number,
  login: ReturnType<typeof requestConfig>,
  listen: string,
): Promise<SheepdogServer | undefined> {
  const { port: _port, ...rest } = login;
  try {
    return await serve({ ...rest, request: id, listen });
  } catch (error) {
    const why = error instanceof Error ? error.message.replace(/^(\[[^\]]*\] )+/, "") : "";
    write(
      io.stderr,
      `[sheepdog] Not serving request ${id}'s workers live (${why}); their reports come from the spool on the cluster.`,
    );
    return undefined;
  }
}

/**
 * Where a server for the request's workers listens: this machine's loopback for a local
 * request, every interface for workers on a cluster's nodes.
 */
async function listenHostOf(id: number, dbfile: string): Promise<string> {
  const summary = (await listRequests({ dbfile })).find((r) => r.id === id);
  const connection = summary?.meta.connection as { host?: unknown } | undefined;
  return connection?.host === "local" ? "127.0.0.1" : "0.0.0.0";
}

/** `sheepdog cleanup`: what detached requests left on the cluster, and what was removed. */
export async function cleanupCommand(io: CliIo, values: Values): Promise<number> {
  const resolved = await settings(values, io.env, io.cwd, true);
  const entries = await cleanup({
    ...requestConfig(resolved),
    dryRun: values["dry-run"] === true,
    force: values.force === true,
  });
  if (values.json) {
    for (const entry of entries) write(io.stdout, JSON.stringify(entry));
    return exitCodes.ok;
  }
  if (entries.length === 0) {
    write(io.stdout, `Nothing staged under ${resolved.config.sshDir} on the cluster.`);
    return exitCodes.ok;
  }
  const rows = entries.map((entry) => [
    entry.dir,
    entry.request === undefined ? "?" : String(entry.request),
    entry.createdAt === undefined ? "?" : timeText(entry.createdAt),
    String(entry.spooled),
    sizeText(entry.bytes),
    outcomeText(entry),
  ]);
  write(io.stdout, table(["directory", "request", "created", "spooled", "size", "outcome"], rows));
  return exitCodes.ok;
}

function outcomeText(entry: StagedRequest): string {
  if (entry.removed) return entry.state === "complete" ? "removed: results home" : "removed";
  if (entry.state === "running") return "kept: waiting for reports (sheepdog attach)";
  if (entry.state === "complete") {
    return "kept: some tasks' deaths were inferred and their reports may still come (--force)";
  }
  return `kept: not a request of this dbfile${entry.store ? ` (${entry.store})` : ""} (--force)`;
}

function sizeText(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}
