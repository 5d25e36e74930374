import { createHash } from "node:crypto";
import { closeSync, existsSync, lstatSync, mkdirSync, openSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/*
 * Sources that a local Python parsed without a syntax error, remembered across processes by a
 * hash in `$XDG_CACHE_HOME/sheepdog/syntax-ok` (else `~/.cache/sheepdog/syntax-ok`), so that a
 * program run again does not wait for a Python to start (a pyenv shim or a conda Python takes
 * a few hundred milliseconds). Only passes are remembered, so an entry can at most let a
 * syntax error through to the cluster's Python, which reports it too. The folder is used only
 * when it belongs to this user and nobody else may write in it.
 */

/** The entry of `sources` as checked by `python`. */
export function passedKey(python: string, sources: readonly string[]): string {
  return createHash("sha256")
    .update(JSON.stringify([python, sources]))
    .digest("hex");
}

/** Whether the sources of `key` passed a check before. */
export function passedBefore(key: string): boolean {
  const folder = ownFolder(false);
  return folder !== undefined && existsSync(join(folder, key));
}

/** Remembers that the sources of `key` passed; a folder that cannot be written is left alone. */
export function rememberPassed(key: string): void {
  const folder = ownFolder(true);
  if (folder === undefined) return;
  try {
    closeSync(openSync(join(folder, key), "a", 0o600));
  } catch {
    // A full disk or a read-only home: the next run checks again.
  }
}

/** The cache folder, made (mode 0700) when `create`; undefined when it is not safely ours. */
function ownFolder(create: boolean): string | undefined {
  const base = process.env.XDG_CACHE_HOME?.trim() || join(homedir(), ".cache");
  const folder = join(base, "sheepdog", "syntax-ok");
  try {
    if (create) mkdirSync(folder, { recursive: true, mode: 0o700 });
    const stats = lstatSync(folder);
    const mine = process.getuid === undefined || stats.uid === process.getuid();
    return stats.isDirectory() && mine && (stats.mode & 0o022) === 0 ? folder : undefined;
  } catch {
    return undefined;
  }
}
