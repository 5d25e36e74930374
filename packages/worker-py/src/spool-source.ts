import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { ExecResult, Remote } from "@sheepdog/contracts";
import { decodeFrames, SheepdogError, SPOOL_FILE_PATTERN, shellQuote } from "@sheepdog/contracts";
import { source } from "./internal/source.js";

/**
 * The absolute path of `sheepdog_spool.py`: the tool a client runs on the cluster's head node
 * to read and remove a detached request's spooled reports, and to list and remove what
 * detached requests left there (stdlib-only Python 3.8+). It ships in this package's
 * `python/` folder.
 */
export const spoolPath: string = fileURLToPath(
  new URL("../python/sheepdog_spool.py", import.meta.url),
);

let cachedSource: string | undefined;

/** The text of `sheepdog_spool.py`, read on the first call and kept after that. */
export function spoolSource(): string {
  cachedSource ??= readFileSync(spoolPath, "utf8");
  return cachedSource;
}

/** The spool tool's commands; see {@link spoolToolCommand}. */
export const spoolToolCommands = ["read", "remove", "list", "purge"] as const;

/** One of {@link spoolToolCommands}. */
export type SpoolToolCommand = (typeof spoolToolCommands)[number];

/** A detached request's directory under `sshDir`: `<job name>.d`, the job named `sheepdog_<request>_<8 hex>`. */
export const STAGED_DIRECTORY_PATTERN = /^sheepdog_[0-9]+_[0-9a-f]{8}\.d$/;

/** One spool file, as `read` sent it. */
export interface SpooledFile {
  /** Its name, `<task>-<nonce>.reports` (see `SPOOL_FILE_PATTERN`). */
  name: string;
  /** Its bytes, unchecked: `decodeSpoolFile` checks them against the request's key. */
  bytes: Uint8Array;
}

/** What one `read` of a spool directory found. */
export interface SpoolRead {
  /** Spool files in name order, as many as fit in the bytes asked for (at least one). */
  files: SpooledFile[];
  /** How many spool files are left for the next read. */
  more: number;
  /** Names of spool files that are not regular files (a link, say): never read, never counted in `more`. */
  skipped: string[];
}

/** A detached request's directory on the cluster, as `list` found it. */
export interface StagedDirectory {
  /** Its name under `sshDir`: `<job name>.d`. */
  dir: string;
  /** Its `request.json`, parsed (a JSON object), or `null` when missing or unreadable. */
  manifest: Readonly<Record<string, unknown>> | null;
  /** How many spool files wait in its `spool/`. */
  spooled: number;
  /** Their size in bytes. */
  spooledBytes: number;
  /** The size of every regular file in it, in bytes. */
  bytes: number;
  /** Its newest modification (of itself or anything in it), in milliseconds since the epoch. */
  modified: number;
  /** Whether its token file (`<sshDir>/<job name>.token`) is there. */
  token: boolean;
}

/** What `purge` removed, and what it could not. */
export interface PurgeResult {
  /** Staged directories removed, with all in them. */
  removed: string[];
  /** Token files removed (`<job name>.token`). */
  tokens: string[];
  /** Staged directories that were not there. */
  missing: string[];
  /** What was left, and why (not a directory, permission denied, ...). */
  failed: { name: string; reason: string }[];
}

/** How to run the spool tool. */
export interface SpoolToolOptions {
  /**
   * The Python interpreter on the head node (a path or a command name).
   * @default "python3"
   */
  python?: string;
  /** Aborting stops the tool and rejects with `ABORTED`. */
  signal?: AbortSignal;
  /** Stops the tool and rejects with `TIMEOUT` after this many milliseconds. */
  timeoutMs?: number;
}

function invalid(message: string): SheepdogError {
  return new SheepdogError("INVALID_INPUT", source, message);
}

function checkWords(command: string, args: readonly string[], python: string): void {
  if (!(spoolToolCommands as readonly string[]).includes(command)) {
    throw invalid(
      `The spool tool has no command ${JSON.stringify(command)}. Use one of ${spoolToolCommands.join(", ")}.`,
    );
  }
  if (typeof python !== "string" || !/^[^\0\n\r]+$/.test(python)) {
    throw invalid("The spool tool's python must name a Python interpreter.");
  }
  for (const arg of args) {
    if (typeof arg !== "string" || arg === "" || arg.includes("\0")) {
      throw invalid(
        `The spool tool's arguments must be non-empty strings without NUL; got ${JSON.stringify(arg)}.`,
      );
    }
  }
}

/**
 * The shell command that runs the spool tool on the head node (in place of the login shell,
 * `exec`): `command` with its arguments (a directory first), quoted for a POSIX shell.
 * Its output is for {@link parseSpoolRead} (`read`) and {@link parseStagedList} (`list`).
 *
 * @example
 * ```ts
 * const line = spoolToolCommand("read", [".sheepdog/sheepdog_7_0a1b2c3d.d/spool", "8388608"]);
 * ```
 */
export function spoolToolCommand(
  command: SpoolToolCommand,
  args: readonly string[],
  python = "python3",
): string {
  checkWords(command, args, python);
  return [
    "exec",
    shellQuote(python),
    "-c",
    shellQuote(spoolSource()),
    command,
    ...args.map(shellQuote),
  ].join(" ");
}

function answerError(command: SpoolToolCommand, what: string, cause?: unknown): SheepdogError {
  return new SheepdogError(
    "REMOTE_FAILED",
    source,
    `The spool tool's answer to ${command} is not ${what}. Check that the head node's python runs the tool as shipped.`,
    { cause },
  );
}

const utf8 = new TextDecoder();
const decodeText = (bytes: Uint8Array): string => utf8.decode(bytes);

function parseJsonAnswer(command: SpoolToolCommand, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw answerError(command, "JSON", error);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw answerError(command, "a JSON object");
  }
  return value as Record<string, unknown>;
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === "string");
}

/**
 * The files and the count left of a `read`'s output (its stdout's bytes): frames of each
 * file's name and bytes, then `{"more": n, "skipped": [...]}`. The files' bytes are views
 * into `bytes`. Throws a `SheepdogError` (`REMOTE_FAILED`) for output that is not that.
 */
export function parseSpoolRead(bytes: Uint8Array): SpoolRead {
  let sections: Uint8Array[];
  try {
    sections = decodeFrames(bytes);
  } catch (error) {
    throw answerError("read", "whole frames", error);
  }
  const last = sections.pop();
  if (last === undefined || sections.length % 2 !== 0)
    throw answerError("read", "pairs of names and files, then a count");
  const { more, skipped } = parseJsonAnswer("read", decodeText(last));
  if (!isCount(more) || !isStringList(skipped)) throw answerError("read", "followed by its count");
  const files: SpooledFile[] = [];
  for (let i = 0; i < sections.length; i += 2) {
    const name = decodeText(sections[i] as Uint8Array);
    if (!SPOOL_FILE_PATTERN.test(name))
      throw answerError("read", `made of spool files (${JSON.stringify(name)})`);
    files.push({ name, bytes: sections[i + 1] as Uint8Array });
  }
  return { files, more, skipped };
}

function parseStagedEntry(entry: unknown): StagedDirectory {
  const e = entry as Partial<Record<keyof StagedDirectory, unknown>> | null;
  const manifest = e?.manifest;
  if (
    typeof e?.dir !== "string" ||
    !STAGED_DIRECTORY_PATTERN.test(e.dir) ||
    !(manifest === null || (typeof manifest === "object" && !Array.isArray(manifest))) ||
    ![e.spooled, e.spooledBytes, e.bytes, e.modified].every(isCount) ||
    typeof e.token !== "boolean"
  ) {
    throw answerError("list", "a list of staged directories");
  }
  return {
    dir: e.dir,
    manifest: manifest as StagedDirectory["manifest"],
    spooled: e.spooled as number,
    spooledBytes: e.spooledBytes as number,
    bytes: e.bytes as number,
    modified: e.modified as number,
    token: e.token,
  };
}

/**
 * The staged directories of a `list`'s output (its stdout), in name order. Throws a
 * `SheepdogError` (`REMOTE_FAILED`) for output that is not that.
 */
export function parseStagedList(stdout: string): StagedDirectory[] {
  const { staged } = parseJsonAnswer("list", stdout);
  if (!Array.isArray(staged)) throw answerError("list", "a list of staged directories");
  return staged.map(parseStagedEntry);
}

function parsePurge(stdout: string): PurgeResult {
  const { removed, tokens, missing, failed } = parseJsonAnswer("purge", stdout);
  const failures = failed as PurgeResult["failed"];
  if (
    !isStringList(removed) ||
    !isStringList(tokens) ||
    !isStringList(missing) ||
    !Array.isArray(failures) ||
    !failures.every((f) => typeof f?.name === "string" && typeof f.reason === "string")
  ) {
    throw answerError("purge", "a list of what was removed");
  }
  return {
    removed,
    tokens,
    missing,
    failed: failures.map(({ name, reason }) => ({ name, reason })),
  };
}

function toolFailure(
  remote: Remote,
  command: SpoolToolCommand,
  python: string,
  result: ExecResult,
): SheepdogError {
  const said = result.stderr.trim().split("\n").slice(-3).join(" ").slice(0, 600);
  const detail = { command, code: result.code, signal: result.signal, stderr: said };
  if (result.code === 127 || result.code === 126) {
    return new SheepdogError(
      "REMOTE_FAILED",
      source,
      `${python} cannot be run on ${remote.name} (exit ${result.code}${said ? `: ${said}` : ""}), and the spool of a detached map is read with it. Install Python 3.8 or later on the head node, and check that "${python}" runs in a non-interactive login shell there (ssh ${remote.name} ${python} --version).`,
      { detail },
    );
  }
  const how = result.code === null ? `signal ${result.signal}` : `exit ${result.code}`;
  return new SheepdogError(
    "REMOTE_FAILED",
    source,
    `The spool tool's ${command} failed on ${remote.name} (${how}${said ? `: ${said}` : ""}). Check that the directory is yours and that the head node's disk is not full.`,
    { detail },
  );
}

/** Runs the tool and resolves with its whole stdout as bytes; throws when it did not exit 0. */
async function runSpoolTool(
  remote: Remote,
  command: SpoolToolCommand,
  args: readonly string[],
  options: SpoolToolOptions,
  stdin?: string,
): Promise<Uint8Array> {
  const python = options.python ?? "python3";
  const chunks: Uint8Array[] = [];
  const result = await remote.exec(spoolToolCommand(command, args, python), {
    ...(stdin !== undefined && { stdin }),
    ...(options.signal !== undefined && { signal: options.signal }),
    ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
    onStdout: (chunk) => chunks.push(chunk),
  });
  if (result.code !== 0) throw toolFailure(remote, command, python, result);
  const whole = Buffer.concat(chunks);
  return new Uint8Array(whole.buffer, whole.byteOffset, whole.byteLength);
}

/**
 * Reads the spool files in `spoolDir` on the head node, in name order: as many as fit in
 * `maxBytes` (each costs its size, its name's and 8 bytes), and at least one if there is any.
 * A missing directory has none. Files being written are never read; read again while `more`
 * is not 0 (after removing those read, with {@link removeSpooled}).
 *
 * @example
 * ```ts
 * const { files, more } = await readSpool(remote, ".sheepdog/sheepdog_7_0a1b2c3d.d/spool", 8 << 20);
 * ```
 */
export async function readSpool(
  remote: Remote,
  spoolDir: string,
  maxBytes: number,
  options: SpoolToolOptions = {},
): Promise<SpoolRead> {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    throw invalid(`readSpool's maxBytes must be a positive integer, not ${String(maxBytes)}.`);
  }
  return parseSpoolRead(await runSpoolTool(remote, "read", [spoolDir, String(maxBytes)], options));
}

/**
 * Removes the spool files `names` from `spoolDir` on the head node (a file already gone is
 * fine) and resolves with how many it removed. Every name must be a spool file's.
 */
export async function removeSpooled(
  remote: Remote,
  spoolDir: string,
  names: readonly string[],
  options: SpoolToolOptions = {},
): Promise<number> {
  const bad = names.find((name) => !SPOOL_FILE_PATTERN.test(name));
  if (bad !== undefined)
    throw invalid(
      `${JSON.stringify(bad)} is not the name of a spool file (<task>-<nonce>.reports).`,
    );
  if (names.length === 0) return 0;
  const stdout = await runSpoolTool(remote, "remove", [spoolDir], options, `${names.join("\n")}\n`);
  const { removed } = parseJsonAnswer("remove", decodeText(stdout));
  if (!isCount(removed)) throw answerError("remove", "a count of files removed");
  return removed;
}

/** The staged directories of detached requests directly under `sshDir` on the head node, by name. */
export async function listStaged(
  remote: Remote,
  sshDir: string,
  options: SpoolToolOptions = {},
): Promise<StagedDirectory[]> {
  return parseStagedList(decodeText(await runSpoolTool(remote, "list", [sshDir], options)));
}

/**
 * Removes the staged directories `dirNames` (each `<job name>.d`, with all in it; a link in it
 * is removed, never followed) from `sshDir` on the head node, and each one's token file.
 * What it could not remove is in the result's `failed`.
 */
export async function purgeStaged(
  remote: Remote,
  sshDir: string,
  dirNames: readonly string[],
  options: SpoolToolOptions = {},
): Promise<PurgeResult> {
  const bad = dirNames.find((name) => !STAGED_DIRECTORY_PATTERN.test(name));
  if (bad !== undefined)
    throw invalid(
      `${JSON.stringify(bad)} is not the name of a staged directory (sheepdog_<request>_<8 hex>.d).`,
    );
  if (dirNames.length === 0) return { removed: [], tokens: [], missing: [], failed: [] };
  return parsePurge(
    decodeText(await runSpoolTool(remote, "purge", [sshDir, ...dirNames], options)),
  );
}
