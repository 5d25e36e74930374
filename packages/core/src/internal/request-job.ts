import type { JobRef } from "@sheepdog/contracts";
import type { ResolvedConfig, SheepdogConfig } from "../config.js";
import { resolveConfig } from "../config.js";
import { storeFor } from "./resources.js";

/**
 * Settings for working on an existing request: the dbfile it is in, and how to reach its
 * cluster. Unset connection settings are those the request was submitted with.
 */
export type RequestConfig = Partial<SheepdogConfig>;

const connectionKeys = [
  "host",
  "sshPort",
  "sshUser",
  "sshKeyfile",
  "sshKnownHosts",
  "sshConfig",
  "sshDir",
  "concurrency",
] as const;

/**
 * How a request reached its cluster, kept in its meta so that another process (getResults,
 * `sheepdog status`) can reach it again. Paths and names only: nothing secret.
 */
export function connectionOf(config: ResolvedConfig): Partial<SheepdogConfig> {
  const connection: Record<string, unknown> = {};
  for (const key of connectionKeys) {
    if (config[key] !== undefined) connection[key] = config[key];
  }
  return connection;
}

export function dbfileOf(config: RequestConfig): string {
  return config.dbfile ?? process.env.SHEEPDOG_DBFILE ?? "./sheepdog.sqlite";
}

function isJobRef(value: unknown): value is JobRef {
  const job = value as JobRef | undefined;
  return (
    typeof job?.id === "string" && Array.isArray(job.parts) && typeof job.scheduler === "string"
  );
}

/** A request's store, record, job, and the configuration that reaches its cluster. */
export async function requestJob(id: number, config: RequestConfig) {
  const store = await storeFor(dbfileOf(config));
  const info = await store.getRequest(id);
  const job = isJobRef(info.meta.job) ? info.meta.job : undefined;
  const saved = (info.meta.connection ?? {}) as Partial<SheepdogConfig>;
  const { dbfile: _dbfile, ...given } = config;
  const resolved = resolveConfig({ host: "local", ...saved, ...given, dbfile: dbfileOf(config) });
  return { store, info, job, config: resolved.config };
}
