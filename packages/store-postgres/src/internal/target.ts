import { userInfo } from "node:os";
import { parse, toClientConfig } from "pg-connection-string";
import { configInvalid } from "./errors.js";
import type { PgpassTarget } from "./pgpass.js";
import { passwordFromPgpass } from "./pgpass.js";

/** A connection URL, parsed: what node-postgres is given, and how messages name it. */
export interface UrlTarget {
  /** node-postgres' connection settings, with a function for the password (see {@link passwordSource}). */
  config: Record<string, unknown>;
  password: PasswordSource;
  /** `postgres://user@host:port/database`: never the password. */
  name: string;
}

const schemes = /^postgres(?:ql)?:\/\//i;

/** Whether `text` is a PostgreSQL connection URL (`postgres://` or `postgresql://`). */
export function isPostgresUrl(text: string): boolean {
  return schemes.test(text);
}

/** The user the operating system says this process runs as (libpq's default user). */
function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return "";
  }
}

/** `postgres://user@host:port/database` as libpq would connect, filling gaps from PG* variables. */
export function describeTarget(config: Record<string, unknown>, env: NodeJS.ProcessEnv): string {
  const user = String(config.user || env.PGUSER || osUser());
  const host = String(config.host || env.PGHOST || "localhost");
  const port = String(config.port || env.PGPORT || 5432);
  const database = String(config.database || env.PGDATABASE || user);
  const shownHost = host.includes(":") && !host.startsWith("/") ? `[${host}]` : host;
  return `postgres://${user}@${shownHost.startsWith("/") ? encodeURIComponent(shownHost) : shownHost}:${port}/${database}`;
}

/**
 * Parses a connection URL. A URL that is not one is CONFIG_INVALID, whose message does not
 * quote it (it may hold a password) and which keeps no cause (a URL parser's error carries its
 * input).
 */
export function parseUrl(url: string, env: NodeJS.ProcessEnv): UrlTarget {
  if (!isPostgresUrl(url)) {
    throw configInvalid(
      'connectionString must be a URL starting with postgres:// or postgresql://, such as "postgres://sheepdog@localhost:5432/sheepdog". It is not shown here, as it may hold a password.',
    );
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = { ...toClientConfig(parse(url)) } as Record<string, unknown>;
  } catch {
    throw configInvalid(
      "connectionString is not a URL that can be read: check its host, port (a number) and the percent-encoding of its user and password. It is not shown here, as it may hold a password.",
    );
  }
  const urlPassword = typeof parsed.password === "string" ? parsed.password : "";
  delete parsed.password;
  const config: Record<string, unknown> = { ...parsed };
  const password = passwordSource(urlPassword, env);
  config.password = password;
  return { config, password, name: describeTarget(parsed, env) };
}

/**
 * The password, asked for by node-postgres when the server wants one (on each new connection):
 * the URL's, else PGPASSWORD, else the matching line of the password file. With none, `missing`
 * says why, for the message of a refused login, and node-postgres goes on without one (the
 * server may not need one: trust, peer).
 */
export interface PasswordSource {
  (target: PgpassTarget): Promise<string | undefined>;
  missing?: string;
}

export function passwordSource(urlPassword: string, env: NodeJS.ProcessEnv): PasswordSource {
  const source: PasswordSource = async (target) => {
    if (urlPassword !== "") return urlPassword;
    if (env.PGPASSWORD) return env.PGPASSWORD;
    const answer = await passwordFromPgpass(target, env);
    source.missing = answer.password === undefined ? answer.why : undefined;
    return answer.password;
  };
  return source;
}
