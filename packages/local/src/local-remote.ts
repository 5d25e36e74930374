import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, readFile, rename, stat, unlink } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import type { ExecOptions, ExecResult, Remote } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";

/** Options of {@link localRemote}. */
export interface LocalRemoteOptions {
  /**
   * The directory commands run in and relative paths are relative to (the "home" of the
   * Remote contract). `HOME` itself is left as it is.
   * @default the current user's home directory
   */
  home?: string;
}

const sourceName = "local";

function invalid(message: string): SheepdogError {
  return new SheepdogError("INVALID_INPUT", sourceName, message);
}

function checkPath(path: unknown, what: string): void {
  if (typeof path !== "string" || path === "" || path.includes("\0")) {
    throw invalid(`${what} needs a non-empty path without NUL characters.`);
  }
}

function checkMode(mode: unknown, what: string): void {
  if (typeof mode !== "number" || !Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw invalid(
      `${what} mode ${String(mode)} is not a file mode. Pass an integer from 0 to 0o7777, such as 0o600.`,
    );
  }
}

function toBuffer(contents: string | Uint8Array): Buffer {
  if (typeof contents === "string") return Buffer.from(contents, "utf8");
  return Buffer.from(contents.buffer, contents.byteOffset, contents.byteLength);
}

function fsError(error: unknown, what: string): SheepdogError {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const hint =
    code === "ENOENT"
      ? "Check the path; relative paths are relative to the home directory, and upload creates no directories (mkdir first)"
      : code === "EACCES" || code === "EPERM"
        ? "Check the permissions on the path"
        : code === "EEXIST" || code === "ENOTDIR"
          ? "A file stands where a directory is needed; remove it or choose another path"
          : "Check the path and the disk";
  return SheepdogError.from(error, "REMOTE_FAILED", sourceName, `Cannot ${what}. ${hint}`);
}

/**
 * A {@link Remote} on this machine: commands run as child processes of `/bin/sh -c` in the
 * home directory, files are written directly. For running Sheepdog on the cluster's head node
 * itself, and for tests. It meets the same contract as `@sheepdog/deploy-ssh`.
 *
 * A stopped command (timeout, abort, close) is killed with its whole process group.
 *
 * @example
 * ```ts
 * await using remote = localRemote();
 * const { stdout } = await remote.exec("qstat");
 * ```
 */
export function localRemote(options: LocalRemoteOptions = {}): Remote & AsyncDisposable {
  if (options.home !== undefined && (typeof options.home !== "string" || options.home === "")) {
    throw new SheepdogError(
      "CONFIG_INVALID",
      sourceName,
      `home must be a directory path; got ${JSON.stringify(options.home)}.`,
    );
  }
  const home = resolve(options.home ?? homedir());
  let closed = false;
  /** Kills of running commands, keyed by child, to stop them on close(). */
  const running = new Map<ChildProcess, (error: SheepdogError) => void>();

  const closedError = (what: string): SheepdogError =>
    new SheepdogError(
      "CLOSED",
      sourceName,
      `${what} after close(). Make a new one with localRemote().`,
    );
  const full = (path: string): string => resolve(home, path);

  const killGroup = (child: ChildProcess): void => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  };

  const exec = async (command: string, execOptions: ExecOptions = {}): Promise<ExecResult> => {
    if (closed) throw closedError("exec");
    if (typeof command !== "string" || command.includes("\0")) {
      throw invalid("exec needs a command string without NUL characters.");
    }
    const { signal, stdin, timeoutMs } = execOptions;
    if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
      throw invalid(`timeoutMs ${String(timeoutMs)} is not a positive number of milliseconds.`);
    }
    // Only the first word: the rest of a command may hold secrets.
    const word = command.trim().split(/\s+/)[0] ?? "";
    const what = `The command "${word.length > 40 ? `${word.slice(0, 40)}...` : word}${word === command.trim() ? "" : " ..."}"`;
    if (signal?.aborted) {
      throw new SheepdogError("ABORTED", sourceName, `${what} was aborted.`, {
        cause: signal.reason,
      });
    }
    return new Promise<ExecResult>((resolvePromise, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        running.delete(child);
      };
      const stop = (error: SheepdogError): void => {
        if (settled) return;
        settled = true;
        cleanup();
        killGroup(child);
        reject(error);
      };
      const onAbort = (): void =>
        stop(
          new SheepdogError("ABORTED", sourceName, `${what} was aborted.`, {
            cause: signal?.reason,
          }),
        );

      const child = spawn("/bin/sh", ["-c", command], {
        cwd: home,
        detached: true,
        stdio: ["pipe", "pipe", "pipe"],
      });
      running.set(child, stop);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            stop(
              new SheepdogError(
                "TIMEOUT",
                sourceName,
                `${what} did not finish within ${timeoutMs} ms, so it was stopped. Raise timeoutMs if it needs longer.`,
              ),
            ),
          timeoutMs,
        );
      }
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      child.stdout?.on("data", (chunk: Buffer) => stdout.push(chunk));
      child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk));
      child.stdin?.on("error", () => {
        // EPIPE: the command did not read all of its stdin. Its exit tells the rest.
      });
      child.on("error", (error) => {
        if (settled) return;
        settled = true;
        cleanup();
        reject(
          SheepdogError.from(
            error,
            "REMOTE_FAILED",
            sourceName,
            `Cannot run /bin/sh in ${home}. Check that the directory exists`,
          ),
        );
      });
      child.on("close", (code, exitSignal) => {
        if (settled) return;
        settled = true;
        cleanup();
        resolvePromise({
          stdout: Buffer.concat(stdout).toString("utf8"),
          stderr: Buffer.concat(stderr).toString("utf8"),
          code: exitSignal ? null : code,
          signal: exitSignal ? exitSignal.replace(/^SIG/, "") : null,
        });
      });
      child.stdin?.end(stdin === undefined ? undefined : toBuffer(stdin));
    });
  };

  const upload = async (
    path: string,
    contents: string | Uint8Array,
    mode = 0o600,
  ): Promise<void> => {
    if (closed) throw closedError("upload");
    checkPath(path, "upload");
    checkMode(mode, "upload");
    if (typeof contents !== "string" && !(contents instanceof Uint8Array)) {
      throw invalid("upload needs a string or a Uint8Array.");
    }
    const target = full(path);
    const temp = join(
      dirname(target),
      `.${basename(target)}.sheepdog-${randomBytes(6).toString("hex")}`,
    );
    let handle: Awaited<ReturnType<typeof open>> | undefined;
    try {
      // Created private, written, then given its mode and renamed into place.
      handle = await open(temp, "wx", mode & 0o700);
      await handle.writeFile(toBuffer(contents));
      await handle.close();
      handle = undefined;
      await chmod(temp, mode);
      await rename(temp, target);
    } catch (error) {
      await handle?.close().catch(() => {});
      await unlink(temp).catch(() => {});
      throw fsError(error, `write ${path} (local)`);
    }
  };

  const read = async (path: string): Promise<Uint8Array> => {
    if (closed) throw closedError("readFile");
    checkPath(path, "readFile");
    try {
      const data = await readFile(full(path));
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    } catch (error) {
      throw fsError(error, `read ${path} (local)`);
    }
  };

  const makeDirectory = async (path: string, mode = 0o700): Promise<void> => {
    if (closed) throw closedError("mkdir");
    checkPath(path, "mkdir");
    checkMode(mode, "mkdir");
    const target = full(path);
    try {
      await mkdir(target, { recursive: true, mode });
    } catch (error) {
      throw fsError(error, `create the directory ${path} (local)`);
    }
    // mkdir -p succeeds on an existing directory, never on a file.
    const stats = await stat(target).catch((error: unknown) => {
      throw fsError(error, `create the directory ${path} (local)`);
    });
    if (!stats.isDirectory()) {
      throw new SheepdogError(
        "REMOTE_FAILED",
        sourceName,
        `Cannot create the directory ${path} (local): a file stands there. Remove it or choose another path.`,
      );
    }
  };

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const stop of [...running.values()]) {
      stop(
        new SheepdogError(
          "CLOSED",
          sourceName,
          "close() was called while a command was running, so it was stopped. Await your calls before closing.",
        ),
      );
    }
  };

  return {
    name: "local",
    exec,
    upload,
    readFile: read,
    mkdir: makeDirectory,
    close,
    [Symbol.asyncDispose]: close,
  };
}
