import { readFile, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

/** What a connection is for, as a line of a password file is matched against it. */
export interface PgpassTarget {
  host: string;
  port: number;
  database: string;
  user: string;
}

/** A password found, or why there is none (for the message of a refused login). */
export type PgpassAnswer = { password: string } | { password?: undefined; why: string };

/** The password file libpq reads: `PGPASSFILE`, else `~/.pgpass`. */
export function pgpassPath(env: NodeJS.ProcessEnv): string {
  return env.PGPASSFILE ?? join(env.HOME ?? homedir(), ".pgpass");
}

/**
 * Splits a line of a password file into its fields: `:` separates them, `\:` and `\\` stand for
 * `:` and `\`. Undefined for a comment, an empty line, or a line without five fields.
 */
export function pgpassFields(line: string): string[] | undefined {
  if (line.startsWith("#") || line.trim() === "") return undefined;
  const fields: string[] = [];
  let field = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (c === "\\" && i + 1 < line.length) {
      field += line[++i];
    } else if (c === ":" && fields.length < 4) {
      fields.push(field);
      field = "";
    } else {
      field += c;
    }
  }
  fields.push(field);
  return fields.length === 5 ? fields : undefined;
}

/**
 * The password of the first line of `text` that matches `target`, as libpq matches: each of
 * host, port, database and user equal, or `*`; a connection over a Unix socket matches the host
 * `localhost`.
 */
export function matchPgpass(text: string, target: PgpassTarget): string | undefined {
  const host = target.host === "" || target.host.startsWith("/") ? "localhost" : target.host;
  const wanted = [host, String(target.port), target.database, target.user];
  for (const line of text.split(/\r?\n/)) {
    const fields = pgpassFields(line);
    if (fields && wanted.every((value, i) => fields[i] === "*" || fields[i] === value)) {
      return fields[4];
    }
  }
  return undefined;
}

/**
 * The password for `target` from the password file, as libpq reads it: only a regular file that
 * neither group nor others can read or write (mode 0600 or less); another one is ignored, and
 * the answer says why.
 */
export async function passwordFromPgpass(
  target: PgpassTarget,
  env: NodeJS.ProcessEnv,
): Promise<PgpassAnswer> {
  const path = pgpassPath(env);
  let mode: number;
  try {
    const stats = await stat(path);
    if (!stats.isFile()) return { why: `${path} is not a plain file, so it was not read` };
    mode = stats.mode;
  } catch {
    return { why: `PGPASSWORD is not set and there is no ${path}` };
  }
  if (process.platform !== "win32" && (mode & 0o077) !== 0) {
    const octal = (mode & 0o777).toString(8).padStart(4, "0");
    return {
      why: `${path} was ignored: other users may read it (mode ${octal}). Run "chmod 600 ${path}"`,
    };
  }
  const password = matchPgpass(await readFile(path, "utf8"), target);
  if (password !== undefined) return { password };
  const { host, port, database, user } = target;
  return { why: `${path} has no line for ${host}:${port}:${database}:${user}` };
}
