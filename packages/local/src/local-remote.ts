import type { ChildProcess } from "node:child_process";
import { homedir } from "node:os";
import { resolve } from "node:path";
import type { ExecOptions, ExecResult, Remote, ReverseTunnel } from "@sheepdog/contracts";
import { checkFileMode, checkRemotePath, SheepdogError } from "@sheepdog/contracts";
import { makeDirectory, readWhole, writeAtomically } from "./internal/files.js";
import { loopbackTunnel } from "./internal/loopback-tunnel.js";
import type { StopCommand } from "./internal/run-command.js";
import { checkExec, runCommand } from "./internal/run-command.js";
import { source } from "./internal/source.js";

/** Options of {@link localRemote}. */
export interface LocalRemoteOptions {
  /**
   * The directory commands run in and relative paths are relative to (the "home" of the
   * Remote contract). `HOME` itself is left as it is.
   * @default the current user's home directory
   */
  home?: string;
}

function closedError(what: string): SheepdogError {
  return new SheepdogError(
    "CLOSED",
    source,
    `${what} after close(). Make a new one with localRemote().`,
  );
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
      source,
      `home must be a directory path; got ${JSON.stringify(options.home)}.`,
    );
  }
  const home = resolve(options.home ?? homedir());
  const full = (path: string): string => resolve(home, path);
  let closed = false;
  /** The stop functions of running commands, to stop them on close(). */
  const running = new Map<ChildProcess, StopCommand>();
  const tunnels = new Set<ReverseTunnel>();

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    const message =
      "close() was called while a command was running, so it was stopped. Await your calls before closing.";
    for (const stop of [...running.values()]) stop(new SheepdogError("CLOSED", source, message));
    await Promise.all([...tunnels].map((tunnel) => tunnel.close()));
  };

  return {
    name: "local",
    async exec(command: string, execOptions: ExecOptions = {}): Promise<ExecResult> {
      if (closed) throw closedError("exec");
      checkExec(command, execOptions);
      return runCommand(command, execOptions, home, running);
    },
    async upload(path: string, contents: string | Uint8Array, mode = 0o600): Promise<void> {
      if (closed) throw closedError("upload");
      checkRemotePath(path, "upload", source);
      checkFileMode(mode, "upload", source);
      if (typeof contents !== "string" && !(contents instanceof Uint8Array)) {
        throw new SheepdogError("INVALID_INPUT", source, "upload needs a string or a Uint8Array.");
      }
      await writeAtomically(full(path), contents, mode, path);
    },
    async readFile(path: string): Promise<Uint8Array> {
      if (closed) throw closedError("readFile");
      checkRemotePath(path, "readFile", source);
      return readWhole(full(path), path);
    },
    async tunnelBack(localPort: number): Promise<ReverseTunnel> {
      if (closed) throw closedError("tunnelBack");
      const tunnel = await loopbackTunnel(localPort);
      tunnels.add(tunnel);
      void tunnel.ended.then(() => tunnels.delete(tunnel));
      return tunnel;
    },
    async mkdir(path: string, mode = 0o700): Promise<void> {
      if (closed) throw closedError("mkdir");
      checkRemotePath(path, "mkdir", source);
      checkFileMode(mode, "mkdir", source);
      await makeDirectory(full(path), mode, path);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
