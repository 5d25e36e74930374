import type { ExecOptions, ExecResult, Remote, ReverseTunnel } from "@sheepdog/contracts";
import { checkFileMode, checkRemotePath, SheepdogError } from "@sheepdog/contracts";
import { adoptConnection, type ConnectionState, type OpenConnection } from "./connection-state.js";
import {
  type ChannelContext,
  ChannelRefused,
  killProcessGroup,
  runOnChannel,
  toBuffer,
} from "./exec-channel.js";
import { Limiter } from "./limiter.js";
import { openReverseTunnel } from "./reverse-tunnel.js";
import { openSftp, SftpFiles } from "./sftp-files.js";
import { source } from "./source.js";
import { raceStop, Stop } from "./stop.js";

export type { OpenConnection } from "./connection-state.js";

/** How the remote behaves; see `ConnectOptions`. */
export interface SshRemoteSettings {
  name: string;
  /** Opens a new connection after the old one was lost; absent for an injected client. */
  reconnect: (() => Promise<OpenConnection>) | undefined;
  maxConcurrentCommands: number;
  commandTimeoutMs: number | undefined;
}

/** Names a command for messages by its first word only: the rest may hold secrets. */
function describeCommand(command: string): string {
  const word = command.trim().split(/\s+/)[0] ?? "";
  const short = word.length > 40 ? `${word.slice(0, 40)}...` : word;
  return `The command "${short}${word === command.trim() ? "" : " ..."}"`;
}

function checkCommand(command: unknown, timeoutMs: number | undefined): void {
  if (typeof command !== "string" || command.includes("\0")) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      "exec needs a command string without NUL characters.",
    );
  }
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
    throw new SheepdogError(
      "INVALID_INPUT",
      source,
      `timeoutMs ${String(timeoutMs)} is not a positive number of milliseconds.`,
    );
  }
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
  /** Remote port forwards still open (close() ends them). */
  private readonly tunnels = new Set<ReverseTunnel>();

  constructor(
    first: OpenConnection,
    private readonly settings: SshRemoteSettings,
  ) {
    this.name = settings.name;
    this.limiter = new Limiter(settings.maxConcurrentCommands);
    this.state = this.adopt(first);
  }

  private adopt(open: OpenConnection): ConnectionState {
    return adoptConnection(open, (state) => {
      if (this.state === state) this.state = undefined;
    });
  }

  private closedError(what: string): SheepdogError {
    return new SheepdogError(
      "CLOSED",
      source,
      `${what} on ${this.name} after close(). Open a new connection with connect().`,
    );
  }

  /** The live connection, reopened (once, however many callers wait) if it was lost. */
  private async connection(): Promise<ConnectionState> {
    if (this.closedFlag) throw this.closedError("A call");
    if (this.state?.alive) return this.state;
    const reconnect = this.settings.reconnect;
    if (!reconnect) {
      throw new SheepdogError(
        "SSH_CONNECT",
        source,
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

  private abortedError(what: string, signal: AbortSignal | undefined): SheepdogError {
    return new SheepdogError("ABORTED", source, `${what} on ${this.name} was aborted.`, {
      cause: signal?.reason,
    });
  }

  private timeoutError(what: string, timeoutMs: number): SheepdogError {
    return new SheepdogError(
      "TIMEOUT",
      source,
      `${what} on ${this.name} did not finish within ${timeoutMs} ms, so it was stopped. Raise timeoutMs if it needs longer.`,
    );
  }

  /** Runs `body` with an abort signal, a timeout and close() all able to stop it. */
  private async guarded<T>(
    what: string,
    options: { signal?: AbortSignal | undefined; timeoutMs?: number | undefined },
    body: (stop: Stop) => Promise<T>,
  ): Promise<T> {
    if (this.closedFlag) throw this.closedError(what);
    const { signal, timeoutMs } = options;
    if (signal?.aborted) throw this.abortedError(what, signal);
    const stop = new Stop();
    const onAbort = (): void => stop.fire(this.abortedError(what, signal));
    signal?.addEventListener("abort", onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => stop.fire(this.timeoutError(what, timeoutMs)), timeoutMs);
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
    const timeoutMs = options.timeoutMs ?? this.settings.commandTimeoutMs;
    checkCommand(command, timeoutMs);
    const what = describeCommand(command);
    return this.guarded(what, { signal: options.signal, timeoutMs }, async (stop) => {
      for (;;) {
        const release = await this.limiter.acquire(stop.promise);
        // A stopped command keeps its slot until it has been killed on the server.
        let handOff: Promise<void> | undefined;
        try {
          const state = await raceStop(this.connection(), stop);
          const run = runOnChannel(
            this.channelContext(state),
            command,
            options.stdin,
            stop,
            options.onStdout,
          );
          handOff = run.cleanup;
          return await run.result;
        } catch (error) {
          if (!(error instanceof ChannelRefused)) throw error;
          this.queueBelowSessionLimit(error, what);
        } finally {
          if (handOff) handOff.then(release, release);
          else release();
        }
      }
    });
  }

  private channelContext(state: ConnectionState): ChannelContext {
    return { name: this.name, state, killGroup: (pid: number) => this.killGroup(state, pid) };
  }

  /**
   * The server limits sessions per connection (MaxSessions): runs fewer commands at once, or
   * fails when even one cannot run.
   */
  private queueBelowSessionLimit(refusal: ChannelRefused, what: string): void {
    const others = this.limiter.inUse - 1;
    if (others < 1) {
      throw new SheepdogError(
        "REMOTE_FAILED",
        source,
        `${this.name} refused to open a session for ${what.toLowerCase()} (${refusal.message}). Check MaxSessions in the server's sshd_config.`,
        { cause: refusal },
      );
    }
    this.limiter.setCapacity(others);
  }

  /** Kills a stopped command's process group, tracked so that close() can wait for it. */
  private killGroup(state: ConnectionState, pid: number): Promise<void> {
    const done = killProcessGroup(state.open.client, pid);
    this.kills.add(done);
    return done.finally(() => this.kills.delete(done));
  }

  /** The connection's files, for a call that `stop` can stop. */
  private async files(stop: Stop): Promise<SftpFiles> {
    const state = await raceStop(this.connection(), stop);
    const sftp = await raceStop(openSftp(state, this.name), stop);
    return new SftpFiles(state, sftp, this.name);
  }

  async tunnelBack(localPort: number): Promise<ReverseTunnel> {
    if (!Number.isInteger(localPort) || localPort < 1 || localPort > 65535) {
      throw new SheepdogError(
        "INVALID_INPUT",
        source,
        `tunnelBack needs a port from 1 to 65535, not ${String(localPort)}.`,
      );
    }
    const what = `Forwarding a port of ${this.name} to port ${localPort}`;
    return this.guarded(what, {}, async (stop) => {
      const state = await raceStop(this.connection(), stop);
      const tunnel = await raceStop(openReverseTunnel(state, this.name, localPort), stop);
      this.tunnels.add(tunnel);
      void tunnel.ended.then(() => this.tunnels.delete(tunnel));
      return tunnel;
    });
  }

  async upload(path: string, contents: string | Uint8Array, mode = 0o600): Promise<void> {
    checkRemotePath(path, "upload", source);
    checkFileMode(mode, "upload", source);
    if (typeof contents !== "string" && !(contents instanceof Uint8Array)) {
      throw new SheepdogError("INVALID_INPUT", source, "upload needs a string or a Uint8Array.");
    }
    const data = toBuffer(contents);
    await this.guarded(`Uploading ${path}`, {}, async (stop) => {
      const files = await this.files(stop);
      await raceStop(files.writeAtomically(path, data, mode), stop);
    });
  }

  async readFile(path: string): Promise<Uint8Array> {
    checkRemotePath(path, "readFile", source);
    return this.guarded(`Reading ${path}`, {}, async (stop) => {
      const files = await this.files(stop);
      const data = await raceStop(files.readWhole(path), stop);
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    });
  }

  async mkdir(path: string, mode = 0o700): Promise<void> {
    checkRemotePath(path, "mkdir", source);
    checkFileMode(mode, "mkdir", source);
    await this.guarded(`Creating ${path}`, {}, async (stop) => {
      const files = await this.files(stop);
      await raceStop(files.mkdirs(path, mode), stop);
    });
  }

  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const stop of this.stops) {
      stop.fire(
        new SheepdogError(
          "CLOSED",
          source,
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
    await Promise.all([...this.tunnels].map((tunnel) => tunnel.close()));
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
