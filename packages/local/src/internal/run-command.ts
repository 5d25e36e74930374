import { type ChildProcess, spawn } from "node:child_process";
import type { ExecOptions, ExecResult } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import { source } from "./source.js";

/** Stops a running command, rejecting its promise with `error`. */
export type StopCommand = (error: SheepdogError) => void;

/** How a command is named in messages: its first word only (the rest may hold secrets). */
function describeCommand(command: string): string {
  const word = command.trim().split(/\s+/)[0] ?? "";
  const shown = word.length > 40 ? `${word.slice(0, 40)}...` : word;
  return `The command "${shown}${word === command.trim() ? "" : " ..."}"`;
}

/** Kills the whole process group of `child` (the shell and what it started), if still alive. */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

function toBuffer(contents: string | Uint8Array): Buffer {
  if (typeof contents === "string") return Buffer.from(contents, "utf8");
  return Buffer.from(contents.buffer, contents.byteOffset, contents.byteLength);
}

/** Collects a child's stdout and stderr, and resolves with them when it closes. */
function collect(
  child: ChildProcess,
  onStdout: ExecOptions["onStdout"],
  settle: (result: ExecResult) => void,
): void {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout.push(chunk);
    onStdout?.(chunk);
  });
  child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk));
  child.on("close", (code, exitSignal) =>
    settle({
      stdout: Buffer.concat(stdout).toString("utf8"),
      stderr: Buffer.concat(stderr).toString("utf8"),
      code: exitSignal ? null : code,
      signal: exitSignal ? exitSignal.replace(/^SIG/, "") : null,
    }),
  );
}

/**
 * Runs `/bin/sh -c command` in `home`, in its own process group, and resolves with its output
 * and exit however it ended. A timeout or an abort kills the whole group and rejects with
 * `TIMEOUT` or `ABORTED`; while it runs, `running` holds its stop function (for close()).
 */
export function runCommand(
  command: string,
  options: ExecOptions,
  home: string,
  running: Map<ChildProcess, StopCommand>,
): Promise<ExecResult> {
  const { signal, stdin, timeoutMs } = options;
  const what = describeCommand(command);
  return new Promise<ExecResult>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const child = spawn("/bin/sh", ["-c", command], {
      cwd: home,
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const end = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      running.delete(child);
      return true;
    };
    const stop: StopCommand = (error) => {
      if (!end()) return;
      killGroup(child);
      reject(error);
    };
    const onAbort = (): void =>
      stop(new SheepdogError("ABORTED", source, `${what} was aborted.`, { cause: signal?.reason }));
    running.set(child, stop);
    signal?.addEventListener("abort", onAbort, { once: true });
    if (timeoutMs !== undefined) {
      const message = `${what} did not finish within ${timeoutMs} ms, so it was stopped. Raise timeoutMs if it needs longer.`;
      timer = setTimeout(() => stop(new SheepdogError("TIMEOUT", source, message)), timeoutMs);
    }
    child.stdin?.on("error", () => {
      // EPIPE: the command did not read all of its stdin. Its exit tells the rest.
    });
    child.on("error", (error) => {
      if (!end()) return;
      const message = `Cannot run /bin/sh in ${home}. Check that the directory exists`;
      reject(SheepdogError.from(error, "REMOTE_FAILED", source, message));
    });
    collect(child, options.onStdout, (result) => {
      if (end()) resolve(result);
    });
    child.stdin?.end(stdin === undefined ? undefined : toBuffer(stdin));
  });
}

/** The checks of `exec`'s arguments and of a signal aborted before the start. */
export function checkExec(command: unknown, options: ExecOptions): void {
  if (typeof command !== "string" || command.includes("\0")) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      "exec needs a command string without NUL characters.",
    );
  }
  const { timeoutMs, signal } = options;
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `timeoutMs ${String(timeoutMs)} is not a positive number of milliseconds.`,
    );
  }
  if (signal?.aborted) {
    throw new SheepdogError("ABORTED", source, `${describeCommand(command)} was aborted.`, {
      cause: signal.reason,
    });
  }
}
