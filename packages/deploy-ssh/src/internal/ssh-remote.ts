import { randomBytes } from "node:crypto";
import { posix } from "node:path";
import type { ExecOptions, ExecResult, Remote } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type { SftpLike, SftpStatsLike, SshChannelLike, SshClientLike } from "../client-like.js";
import { Limiter } from "./limiter.js";
import { pidLine, pidPattern, withoutPidLine } from "./pid-line.js";

const sourceName = "deploy-ssh";

/** A connection as the remote sees it: a client and how to let it go. */
export interface OpenConnection {
  client: SshClientLike;
  dispose(): void;
}

interface ConnectionState {
  open: OpenConnection;
  alive: boolean;
  lastError: Error | undefined;
  sftp: Promise<SftpLike> | undefined;
  /** Resolves once the client has closed. */
  closed: Promise<void>;
}

/** How the remote behaves; see `ConnectOptions`. */
export interface SshRemoteSettings {
  name: string;
  /** Opens a new connection after the old one was lost; absent for an injected client. */
  reconnect: (() => Promise<OpenConnection>) | undefined;
  maxConcurrentCommands: number;
  commandTimeoutMs: number | undefined;
}

/** Fires once, with the error that stops an operation (abort, timeout, close). */
class Stop {
  readonly promise: Promise<Error>;
  fired: Error | undefined;
  private resolve!: (error: Error) => void;
  constructor() {
    this.promise = new Promise((resolve) => {
      this.resolve = resolve;
    });
  }
  fire(error: Error): void {
    if (this.fired) return;
    this.fired = error;
    this.resolve(error);
  }
}

/**
 * Names a command for messages by its first word only: the rest may hold secrets.
 */
function describeCommand(command: string): string {
  const word = command.trim().split(/\s+/)[0] ?? "";
  const short = word.length > 40 ? `${word.slice(0, 40)}...` : word;
  return `The command "${short}${word === command.trim() ? "" : " ..."}"`;
}

/** The server refused to open a channel (MaxSessions reached, most likely). */
class ChannelRefused extends Error {}

function toBuffer(contents: string | Uint8Array): Buffer {
  if (typeof contents === "string") return Buffer.from(contents, "utf8");
  return Buffer.from(contents.buffer, contents.byteOffset, contents.byteLength);
}

/** SFTP status codes (draft-ietf-secsh-filexfer-02). */
const SFTP_NO_SUCH_FILE = 2;
const SFTP_PERMISSION_DENIED = 3;

function sftpCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

function checkMode(mode: number, what: string): SheepdogError | undefined {
  if (Number.isInteger(mode) && mode >= 0 && mode <= 0o7777) return undefined;
  return new SheepdogError(
    "INVALID_INPUT",
    sourceName,
    `${what} mode ${String(mode)} is not a file mode. Pass an integer from 0 to 0o7777, such as 0o600.`,
  );
}

function checkPath(path: unknown, what: string): SheepdogError | undefined {
  if (typeof path === "string" && path !== "" && !path.includes("\0")) return undefined;
  return new SheepdogError(
    "INVALID_INPUT",
    sourceName,
    `${what} needs a non-empty path without NUL characters.`,
  );
}

/** A `Remote` over one SSH connection, reused across calls and reopened if it is lost. */
export class SshRemote implements Remote, AsyncDisposable {
  readonly name: string;
  private state: ConnectionState | undefined;
  private reconnecting: Promise<ConnectionState> | undefined;
  private closedFlag = false;
  private readonly stops = new Set<Stop>();
  private readonly limiter: Limiter;
  /** Kills of stopped commands still under way (close() waits for them). */
  private readonly kills = new Set<Promise<void>>();

  constructor(
    first: OpenConnection,
    private readonly settings: SshRemoteSettings,
  ) {
    this.name = settings.name;
    this.limiter = new Limiter(settings.maxConcurrentCommands);
    this.state = this.adopt(first);
  }

  private adopt(open: OpenConnection): ConnectionState {
    let markClosed!: () => void;
    const state: ConnectionState = {
      open,
      alive: true,
      lastError: undefined,
      sftp: undefined,
      closed: new Promise((resolve) => {
        markClosed = resolve;
      }),
    };
    const onError = (error: Error): void => {
      state.lastError = error;
    };
    const onClose = (): void => {
      state.alive = false;
      // Jump connections and ProxyCommands under a lost connection go with it.
      open.dispose();
      state.sftp = undefined;
      open.client.removeListener("error", onError);
      open.client.removeListener("close", onClose);
      // Keep a listener: an "error" with none would crash the process.
      open.client.on("error", () => {});
      if (this.state === state) this.state = undefined;
      markClosed();
    };
    open.client.on("error", onError);
    open.client.on("close", onClose);
    return state;
  }

  private closedError(what: string): SheepdogError {
    return new SheepdogError(
      "CLOSED",
      sourceName,
      `${what} on ${this.name} after close(). Open a new connection with connect().`,
    );
  }

  private lostError(state: ConnectionState, what: string): SheepdogError {
    const detail = state.lastError ? ` (${state.lastError.message})` : "";
    return new SheepdogError(
      "SSH_CONNECT",
      sourceName,
      `The connection to ${this.name} was lost during ${what}${detail}. Check the network and the host; the next call reconnects.`,
      { cause: state.lastError },
    );
  }

  private async connection(): Promise<ConnectionState> {
    if (this.closedFlag) throw this.closedError("A call");
    if (this.state?.alive) return this.state;
    const reconnect = this.settings.reconnect;
    if (!reconnect) {
      throw new SheepdogError(
        "SSH_CONNECT",
        sourceName,
        `The connection to ${this.name} is closed, and it was given as a client, so Sheepdog cannot reopen it. Pass a connected client, or let connect() open the connection.`,
      );
    }
    this.reconnecting ??= reconnect().then(
      (open) => {
        this.reconnecting = undefined;
        if (this.closedFlag) {
          open.dispose();
          throw this.closedError("A call");
        }
        this.state = this.adopt(open);
        return this.state;
      },
      (error: unknown) => {
        this.reconnecting = undefined;
        throw error;
      },
    );
    return this.reconnecting;
  }

  private race<T>(work: Promise<T>, stop: Stop): Promise<T> {
    return Promise.race([
      work,
      stop.promise.then((error) => {
        throw error;
      }),
    ]);
  }

  /** Runs `body` with an abort signal, a timeout and close() all able to stop it. */
  private async guarded<T>(
    what: string,
    options: { signal?: AbortSignal | undefined; timeoutMs?: number | undefined },
    body: (stop: Stop) => Promise<T>,
  ): Promise<T> {
    if (this.closedFlag) throw this.closedError(what);
    const { signal, timeoutMs } = options;
    if (signal?.aborted) {
      throw new SheepdogError("ABORTED", sourceName, `${what} on ${this.name} was aborted.`, {
        cause: signal.reason,
      });
    }
    const stop = new Stop();
    const onAbort = (): void =>
      stop.fire(
        new SheepdogError("ABORTED", sourceName, `${what} on ${this.name} was aborted.`, {
          cause: signal?.reason,
        }),
      );
    signal?.addEventListener("abort", onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    if (timeoutMs !== undefined) {
      timer = setTimeout(
        () =>
          stop.fire(
            new SheepdogError(
              "TIMEOUT",
              sourceName,
              `${what} on ${this.name} did not finish within ${timeoutMs} ms, so it was stopped. Raise timeoutMs if it needs longer.`,
            ),
          ),
        timeoutMs,
      );
    }
    this.stops.add(stop);
    try {
      return await body(stop);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      this.stops.delete(stop);
    }
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    if (typeof command !== "string" || command.includes("\0")) {
      throw new SheepdogError(
        "INVALID_INPUT",
        sourceName,
        "exec needs a command string without NUL characters.",
      );
    }
    const timeoutMs = options.timeoutMs ?? this.settings.commandTimeoutMs;
    if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
      throw new SheepdogError(
        "INVALID_INPUT",
        sourceName,
        `timeoutMs ${String(timeoutMs)} is not a positive number of milliseconds.`,
      );
    }
    const what = describeCommand(command);
    return this.guarded(what, { signal: options.signal, timeoutMs }, async (stop) => {
      for (;;) {
        const release = await this.limiter.acquire(stop.promise);
        // A stopped command keeps its slot until it has been killed on the server.
        let handOff: Promise<void> | undefined;
        try {
          const state = await this.race(this.connection(), stop);
          const run = this.runExec(state, command, options.stdin, stop);
          handOff = run.cleanup;
          return await run.result;
        } catch (error) {
          if (!(error instanceof ChannelRefused)) throw error;
          // The server limits sessions per connection (MaxSessions): queue below its limit.
          const others = this.limiter.inUse - 1;
          if (others < 1) {
            throw new SheepdogError(
              "REMOTE_FAILED",
              sourceName,
              `${this.name} refused to open a session for ${what.toLowerCase()} (${error.message}). Check MaxSessions in the server's sshd_config.`,
              { cause: error },
            );
          }
          this.limiter.setCapacity(others);
        } finally {
          if (handOff) handOff.then(release, release);
          else release();
        }
      }
    });
  }

  /**
   * Runs one command on a new channel. The command is prefixed with a line that reports its
   * shell's pid on stderr (sshd makes that shell a process group leader), so that a stopped
   * command can be killed with its children by `kill -KILL -- -<pid>` on another channel:
   * OpenSSH before 7.9 ignores SSH signal requests, and ssh2 cannot send one once stdin is
   * closed. The line is removed from stderr before anyone sees it.
   */
  private runExec(
    state: ConnectionState,
    command: string,
    stdin: string | Uint8Array | undefined,
    stop: Stop,
  ): { result: Promise<ExecResult>; cleanup: Promise<void> } {
    let pid: number | undefined;
    let finished = false;
    let channel: SshChannelLike | undefined;
    let resolveCleanup!: () => void;
    const cleanup = new Promise<void>((resolve) => {
      resolveCleanup = resolve;
    });
    const kill = (): void => {
      if (finished || !channel) {
        resolveCleanup();
        return;
      }
      const target = pid;
      const opened = channel;
      const closeChannel = (): void => {
        try {
          opened.close();
        } catch {
          // The channel may already be closing.
        }
      };
      if (target === undefined || !state.alive) {
        closeChannel();
        resolveCleanup();
        return;
      }
      void this.killGroup(state, target).then(() => {
        closeChannel();
        resolveCleanup();
      });
    };
    const result = new Promise<ExecResult>((resolve, reject) => {
      let done = false;
      const settle = (error: Error | undefined, value?: ExecResult): void => {
        if (done) return;
        done = true;
        if (error) reject(error);
        else if (value) resolve(value);
      };
      stop.promise.then(
        (error) => {
          settle(error);
          kill();
        },
        () => {},
      );
      try {
        state.open.client.exec(`${pidLine}\n${command}`, {}, (error, opened) => {
          if (stop.fired) {
            if (opened) {
              channel = opened;
              // The pid is not known yet: wait for it briefly, then kill.
              opened.stderr.on("data", () => {});
              opened.on("close", () => {
                finished = true;
              });
              try {
                opened.close();
              } catch {
                // Closing already.
              }
            }
            resolveCleanup();
            return;
          }
          if (error) {
            resolveCleanup();
            if (!state.alive) {
              settle(this.lostError(state, "a command"));
            } else if (/Channel open failure/i.test(error.message)) {
              settle(new ChannelRefused(error.message));
            } else {
              settle(
                SheepdogError.from(
                  error,
                  "REMOTE_FAILED",
                  sourceName,
                  `Cannot run a command on ${this.name}`,
                ),
              );
            }
            return;
          }
          channel = opened;
          const stdout: Buffer[] = [];
          const stderr: Buffer[] = [];
          // The pid line comes first, or after whatever the login shell's startup files
          // printed; look for it in the first 64 KiB of stderr.
          let probe: Buffer | undefined = Buffer.alloc(0);
          let pidLineText: string | undefined;
          let exit: { code: number | null; signal: string | null } | undefined;
          opened.on("data", (data: Buffer) => stdout.push(data));
          opened.stderr.on("data", (data: Buffer) => {
            stderr.push(data);
            if (probe === undefined) return;
            probe = Buffer.concat([probe, data]);
            const match = pidPattern.exec(probe.toString("latin1"));
            if (match) {
              pid = Number(match[2]);
              pidLineText = `sheepdog-pid ${match[2]}\n`;
              probe = undefined;
            } else if (probe.length > 64 * 1024) {
              probe = undefined;
            }
          });
          opened.on("exit", (code, signal) => {
            exit = {
              code: typeof code === "number" ? code : null,
              signal: typeof signal === "string" ? signal.replace(/^SIG/, "") : null,
            };
          });
          opened.on("close", () => {
            finished = true;
            if (exit) {
              settle(undefined, {
                stdout: Buffer.concat(stdout).toString("utf8"),
                stderr: withoutPidLine(Buffer.concat(stderr).toString("utf8"), pidLineText),
                code: exit.signal ? null : exit.code,
                signal: exit.signal,
              });
              resolveCleanup();
              return;
            }
            // Let the client's own "close" run first, so a lost connection is told apart.
            setImmediate(() => {
              resolveCleanup();
              if (!state.alive) settle(this.lostError(state, "a command"));
              else
                settle(
                  new SheepdogError(
                    "REMOTE_FAILED",
                    sourceName,
                    `A command on ${this.name} ended without an exit status or signal. Check the server's log.`,
                  ),
                );
            });
          });
          try {
            opened.end(stdin === undefined ? undefined : toBuffer(stdin));
          } catch (writeError) {
            settle(
              SheepdogError.from(writeError, "REMOTE_FAILED", sourceName, "Cannot write stdin"),
            );
          }
        });
      } catch (error) {
        resolveCleanup();
        settle(
          state.alive
            ? SheepdogError.from(
                error,
                "REMOTE_FAILED",
                sourceName,
                `Cannot run a command on ${this.name}`,
              )
            : this.lostError(state, "a command"),
        );
      }
    });
    return { result, cleanup };
  }

  /** Kills a command's process group on the server, on a channel of its own (best effort). */
  private killGroup(state: ConnectionState, pid: number): Promise<void> {
    const kill = new Promise<void>((resolve) => {
      try {
        state.open.client.exec(`kill -KILL -- -${pid} 2>/dev/null`, {}, (error, channel) => {
          if (error) {
            resolve();
            return;
          }
          channel.on("data", () => {});
          channel.stderr.on("data", () => {});
          channel.on("close", () => resolve());
          channel.end();
        });
      } catch {
        resolve();
      }
    });
    const limit = new Promise<void>((resolve) => setTimeout(resolve, 5000).unref());
    const done = Promise.race([kill, limit]);
    this.kills.add(done);
    return done.finally(() => this.kills.delete(done));
  }

  private sftp(state: ConnectionState): Promise<SftpLike> {
    state.sftp ??= new Promise<SftpLike>((resolve, reject) => {
      try {
        state.open.client.sftp((error, sftp) => {
          if (error) {
            state.sftp = undefined;
            reject(
              state.alive
                ? SheepdogError.from(
                    error,
                    "REMOTE_FAILED",
                    sourceName,
                    `Cannot start SFTP on ${this.name}. Check that the server has an sftp Subsystem`,
                  )
                : this.lostError(state, "SFTP start"),
            );
            return;
          }
          sftp.on("close", () => {
            if (state.sftp && state.alive) state.sftp = undefined;
          });
          resolve(sftp);
        });
      } catch (error) {
        state.sftp = undefined;
        reject(SheepdogError.from(error, "REMOTE_FAILED", sourceName, "Cannot start SFTP"));
      }
    });
    return state.sftp;
  }

  /** Runs one SFTP call as a promise, with errors normalised. */
  private call<T>(
    state: ConnectionState,
    what: string,
    fn: (callback: (error: Error | undefined | null, value?: T) => void) => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      try {
        fn((error, value) => {
          if (error) reject(this.sftpError(state, error, what));
          else resolve(value as T);
        });
      } catch (error) {
        reject(this.sftpError(state, error, what));
      }
    });
  }

  private sftpError(state: ConnectionState, error: unknown, what: string): SheepdogError {
    if (SheepdogError.isInstance(error)) return error;
    if (!state.alive) return this.lostError(state, what);
    const code = sftpCode(error);
    const hint =
      code === SFTP_NO_SUCH_FILE
        ? "Check the path; relative paths are relative to the remote home, and upload creates no directories (mkdir first)"
        : code === SFTP_PERMISSION_DENIED
          ? "Check the permissions on the remote path"
          : "Check the path and the remote disk";
    const cause = error instanceof Error ? error.message : String(error);
    return new SheepdogError(
      "REMOTE_FAILED",
      sourceName,
      `Cannot ${what} on ${this.name}: ${cause}. ${hint}.`,
      { cause: error },
    );
  }

  async upload(path: string, contents: string | Uint8Array, mode = 0o600): Promise<void> {
    const invalid = checkPath(path, "upload") ?? checkMode(mode, "upload");
    if (invalid) throw invalid;
    if (typeof contents !== "string" && !(contents instanceof Uint8Array)) {
      throw new SheepdogError(
        "INVALID_INPUT",
        sourceName,
        "upload needs a string or a Uint8Array.",
      );
    }
    const data = toBuffer(contents);
    await this.guarded(`Uploading ${path}`, {}, async (stop) => {
      const state = await this.race(this.connection(), stop);
      const sftp = await this.race(this.sftp(state), stop);
      await this.race(this.writeAtomically(state, sftp, path, data, mode), stop);
    });
  }

  /** Writes to a temporary file beside `path`, sets the mode, then renames it over `path`. */
  private async writeAtomically(
    state: ConnectionState,
    sftp: SftpLike,
    path: string,
    data: Buffer,
    mode: number,
  ): Promise<void> {
    const dir = posix.dirname(path);
    const temp = posix.join(
      dir,
      `.${posix.basename(path)}.sheepdog-${randomBytes(6).toString("hex")}`,
    );
    const what = `write ${path}`;
    const handle = await this.call<Buffer>(state, what, (cb) =>
      sftp.open(temp, "w", { mode: mode & 0o700 }, cb),
    );
    let renamed = false;
    try {
      try {
        // Pipelined writes of 32 KiB, up to 16 in flight.
        const chunk = 32 * 1024;
        const offsets: number[] = [];
        for (let offset = 0; offset < data.length; offset += chunk) offsets.push(offset);
        let next = 0;
        const worker = async (): Promise<void> => {
          while (next < offsets.length) {
            const offset = offsets[next++] ?? 0;
            const length = Math.min(chunk, data.length - offset);
            await this.call<void>(state, what, (cb) =>
              sftp.write(handle, data, offset, length, offset, cb),
            );
          }
        };
        await Promise.all(Array.from({ length: Math.min(16, offsets.length) }, worker));
        await this.call<void>(state, `set the mode of ${path}`, (cb) =>
          sftp.fchmod(handle, mode, cb),
        );
      } finally {
        await this.call<void>(state, what, (cb) => sftp.close(handle, cb));
      }
      await this.call<void>(state, `rename ${temp} to ${path}`, (cb) => {
        try {
          sftp.ext_openssh_rename(temp, path, cb);
        } catch {
          // No posix-rename: SFTP's plain rename refuses to replace, so remove the old file.
          sftp.unlink(path, () => sftp.rename(temp, path, cb));
        }
      });
      renamed = true;
    } finally {
      if (!renamed && state.alive) sftp.unlink(temp, () => {});
    }
  }

  async readFile(path: string): Promise<Uint8Array> {
    const invalid = checkPath(path, "readFile");
    if (invalid) throw invalid;
    return this.guarded(`Reading ${path}`, {}, async (stop) => {
      const state = await this.race(this.connection(), stop);
      const sftp = await this.race(this.sftp(state), stop);
      const data = await this.race(this.readWhole(state, sftp, path), stop);
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    });
  }

  /** Reads a file with pipelined 32 KiB reads, up to 16 in flight (ssh2's readFile has one). */
  private async readWhole(state: ConnectionState, sftp: SftpLike, path: string): Promise<Buffer> {
    const what = `read ${path}`;
    const handle = await this.call<Buffer>(state, what, (cb) => sftp.open(path, "r", cb));
    try {
      const stats = await this.call<SftpStatsLike>(state, what, (cb) => sftp.fstat(handle, cb));
      if (stats.isDirectory()) {
        throw new SheepdogError(
          "REMOTE_FAILED",
          sourceName,
          `Cannot read ${path} on ${this.name}: it is a directory. Pass a file's path.`,
        );
      }
      const size = stats.size;
      const data = Buffer.alloc(size);
      const chunk = 32 * 1024;
      let end = size;
      let next = 0;
      // A read may return less than asked; keep reading that chunk until it is full or at EOF.
      const readChunk = async (start: number): Promise<void> => {
        let position = start;
        const stopAt = Math.min(start + chunk, size);
        while (position < stopAt && position < end) {
          const bytes = await new Promise<number>((resolve, reject) => {
            try {
              sftp.read(handle, data, position, stopAt - position, position, (error, n) => {
                // ssh2 reports end of file as an error with code 1 (SSH_FX_EOF).
                if (error && sftpCode(error) !== 1) reject(this.sftpError(state, error, what));
                else resolve(error ? 0 : n);
              });
            } catch (error) {
              reject(this.sftpError(state, error, what));
            }
          });
          if (bytes === 0) {
            end = Math.min(end, position);
            return;
          }
          position += bytes;
        }
      };
      const worker = async (): Promise<void> => {
        while (next * chunk < size) {
          const start = next++ * chunk;
          await readChunk(start);
        }
      };
      await Promise.all(Array.from({ length: Math.min(16, Math.ceil(size / chunk)) }, worker));
      // A file that shrank while being read is returned as it ended.
      return end < size ? data.subarray(0, end) : data;
    } finally {
      await this.call<void>(state, what, (cb) => sftp.close(handle, cb)).catch(() => {});
    }
  }

  async mkdir(path: string, mode = 0o700): Promise<void> {
    const invalid = checkPath(path, "mkdir") ?? checkMode(mode, "mkdir");
    if (invalid) throw invalid;
    await this.guarded(`Creating ${path}`, {}, async (stop) => {
      const state = await this.race(this.connection(), stop);
      const sftp = await this.race(this.sftp(state), stop);
      await this.race(this.mkdirs(state, sftp, path, mode), stop);
    });
  }

  private async mkdirs(
    state: ConnectionState,
    sftp: SftpLike,
    path: string,
    mode: number,
  ): Promise<void> {
    const absolute = path.startsWith("/");
    const parts = path.split("/").filter((part) => part !== "" && part !== ".");
    let current = absolute ? "/" : "";
    const stat = (p: string): Promise<SftpStatsLike | undefined> =>
      new Promise((resolve, reject) => {
        try {
          sftp.stat(p, (error, stats) => {
            if (!error) resolve(stats);
            else if (sftpCode(error) === SFTP_NO_SUCH_FILE) resolve(undefined);
            else reject(this.sftpError(state, error, `check ${p}`));
          });
        } catch (error) {
          reject(this.sftpError(state, error, `check ${p}`));
        }
      });
    for (const part of parts) {
      current = current === "" ? part : posix.join(current, part);
      const existing = await stat(current);
      if (existing?.isDirectory()) continue;
      if (existing) {
        throw new SheepdogError(
          "REMOTE_FAILED",
          sourceName,
          `Cannot create the directory ${path} on ${this.name}: ${current} exists and is not a directory. Remove it or choose another path.`,
        );
      }
      try {
        await this.call<void>(state, `create the directory ${current}`, (cb) =>
          sftp.mkdir(current, { mode }, cb),
        );
      } catch (error) {
        // Someone else may have made it meanwhile.
        if (!(await stat(current))?.isDirectory()) throw error;
      }
    }
  }

  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const stop of this.stops) {
      stop.fire(
        new SheepdogError(
          "CLOSED",
          sourceName,
          `close() was called on ${this.name} while a call was under way, so it was stopped. Await your calls before closing.`,
        ),
      );
    }
    const state = this.state;
    this.state = undefined;
    if (!state) return;
    // Let stopped commands be killed on the server before the connection goes.
    await new Promise((resolve) => setImmediate(resolve));
    await Promise.all([...this.kills]);
    state.open.dispose();
    if (this.settings.reconnect) {
      // Wait (briefly) for the socket to close, so that close() means closed.
      await Promise.race([
        state.closed,
        new Promise((resolve) => setTimeout(resolve, 2000).unref()),
      ]);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
