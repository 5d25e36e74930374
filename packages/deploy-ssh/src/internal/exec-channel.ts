import type { ExecResult } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import type { SshChannelLike, SshClientLike } from "../client-like.js";
import { type ConnectionState, lostError } from "./connection-state.js";
import { PidProbe, pidLine, withoutPidLine } from "./pid-line.js";
import { source } from "./source.js";
import type { Stop } from "./stop.js";

/** The server refused to open a channel (MaxSessions reached, most likely). */
export class ChannelRefused extends Error {}

/** What a command run needs from its remote. */
export interface ChannelContext {
  /** The remote's name, for messages. */
  name: string;
  state: ConnectionState;
  /** Kills a process group on the server (best effort); resolves when done or given up. */
  killGroup(pid: number): Promise<void>;
}

/** How a command's channel ended, from its "exit" event. */
interface Exit {
  code: number | null;
  signal: string | null;
}

/** What a command wrote, gathered until its channel closes. */
interface Output {
  stdout: Buffer[];
  stderr: Buffer[];
  probe: PidProbe;
  exit: Exit | undefined;
}

export function toBuffer(contents: string | Uint8Array): Buffer {
  if (typeof contents === "string") return Buffer.from(contents, "utf8");
  return Buffer.from(contents.buffer, contents.byteOffset, contents.byteLength);
}

/**
 * Runs one command on a new channel. The command is prefixed with a line that reports its
 * shell's pid on stderr (sshd makes that shell a process group leader), so that a stopped
 * command can be killed with its children by `kill -KILL -- -<pid>` on another channel:
 * OpenSSH before 7.9 ignores SSH signal requests, and ssh2 cannot send one once stdin is
 * closed. The line is removed from stderr before anyone sees it.
 *
 * `result` settles with the command's outcome, or rejects with the stop's error (or with
 * {@link ChannelRefused}); `cleanup` resolves once a stopped command has been killed and its
 * channel closed.
 */
export function runOnChannel(
  context: ChannelContext,
  command: string,
  stdin: string | Uint8Array | undefined,
  stop: Stop,
  onStdout?: (chunk: Uint8Array) => void,
): { result: Promise<ExecResult>; cleanup: Promise<void> } {
  const run = new CommandRun(context, stop, onStdout);
  run.start(command, stdin);
  return { result: run.result, cleanup: run.cleanup };
}

/** One command, from opening its channel until it has ended and been cleaned up. */
class CommandRun {
  readonly result: Promise<ExecResult>;
  readonly cleanup: Promise<void>;
  private resolveResult!: (value: ExecResult) => void;
  private rejectResult!: (error: Error) => void;
  private endCleanup!: () => void;
  private settled = false;
  private channel: SshChannelLike | undefined;
  /** True once the channel has closed. */
  private finished = false;
  private readonly probe = new PidProbe();

  constructor(
    private readonly context: ChannelContext,
    private readonly stop: Stop,
    private readonly onStdout: ((chunk: Uint8Array) => void) | undefined,
  ) {
    this.cleanup = new Promise<void>((resolve) => {
      this.endCleanup = resolve;
    });
    this.result = new Promise<ExecResult>((resolve, reject) => {
      this.resolveResult = resolve;
      this.rejectResult = reject;
    });
    stop.promise.then(
      (error) => {
        this.settle(error);
        this.kill();
      },
      () => {},
    );
  }

  start(command: string, stdin: string | Uint8Array | undefined): void {
    const { state, name } = this.context;
    try {
      state.open.client.exec(`${pidLine}\n${command}`, {}, (error, opened) =>
        this.onOpened(error, opened, stdin),
      );
    } catch (error) {
      this.endCleanup();
      this.settle(
        state.alive
          ? SheepdogError.from(error, "REMOTE_FAILED", source, `Cannot run a command on ${name}`)
          : lostError(name, state, "a command"),
      );
    }
  }

  private settle(error: Error | undefined, value?: ExecResult): void {
    if (this.settled) return;
    this.settled = true;
    if (error) this.rejectResult(error);
    else if (value) this.resolveResult(value);
  }

  private onOpened(
    error: Error | undefined,
    opened: SshChannelLike | undefined,
    stdin: string | Uint8Array | undefined,
  ): void {
    if (this.stop.fired) {
      this.abandon(opened);
      return;
    }
    if (error || !opened) {
      this.endCleanup();
      this.settle(this.openError(error ?? new Error("no channel")));
      return;
    }
    this.channel = opened;
    this.collect(opened);
    try {
      opened.end(stdin === undefined ? undefined : toBuffer(stdin));
    } catch (writeError) {
      this.settle(SheepdogError.from(writeError, "REMOTE_FAILED", source, "Cannot write stdin"));
    }
  }

  /** Closes a channel that opened after the command was stopped (its pid is not known yet). */
  private abandon(opened: SshChannelLike | undefined): void {
    if (opened) {
      this.channel = opened;
      opened.stderr.on("data", () => {});
      opened.on("close", () => {
        this.finished = true;
      });
      try {
        opened.close();
      } catch {
        // Closing already.
      }
    }
    this.endCleanup();
  }

  private openError(error: Error): Error {
    const { state, name } = this.context;
    if (!state.alive) return lostError(name, state, "a command");
    if (/Channel open failure/i.test(error.message)) return new ChannelRefused(error.message);
    return SheepdogError.from(error, "REMOTE_FAILED", source, `Cannot run a command on ${name}`);
  }

  private collect(opened: SshChannelLike): void {
    const output: Output = { stdout: [], stderr: [], probe: this.probe, exit: undefined };
    opened.on("data", (data: Buffer) => {
      output.stdout.push(data);
      this.onStdout?.(data);
    });
    opened.stderr.on("data", (data: Buffer) => {
      output.stderr.push(data);
      this.probe.feed(data);
    });
    opened.on("exit", (code, signal) => {
      output.exit = {
        code: typeof code === "number" ? code : null,
        signal: typeof signal === "string" ? signal.replace(/^SIG/, "") : null,
      };
    });
    opened.on("close", () => this.onClose(output));
  }

  private onClose(output: Output): void {
    this.finished = true;
    const { exit } = output;
    if (exit) {
      this.settle(undefined, {
        stdout: Buffer.concat(output.stdout).toString("utf8"),
        stderr: withoutPidLine(Buffer.concat(output.stderr).toString("utf8"), output.probe.line),
        code: exit.signal ? null : exit.code,
        signal: exit.signal,
      });
      this.endCleanup();
      return;
    }
    // Let the client's own "close" run first, so a lost connection is told apart.
    setImmediate(() => {
      this.endCleanup();
      const { state, name } = this.context;
      this.settle(
        state.alive
          ? new SheepdogError(
              "REMOTE_FAILED",
              source,
              `A command on ${name} ended without an exit status or signal. Check the server's log.`,
            )
          : lostError(name, state, "a command"),
      );
    });
  }

  /** Stops the command: kills its process group (when its pid is known), then its channel. */
  private kill(): void {
    const channel = this.channel;
    if (this.finished || !channel) {
      this.endCleanup();
      return;
    }
    const closeChannel = (): void => {
      try {
        channel.close();
      } catch {
        // The channel may already be closing.
      }
    };
    const pid = this.probe.pid;
    if (pid === undefined || !this.context.state.alive) {
      closeChannel();
      this.endCleanup();
      return;
    }
    void this.context.killGroup(pid).then(() => {
      closeChannel();
      this.endCleanup();
    });
  }
}

/**
 * Kills a command's process group on the server, on a channel of its own (best effort);
 * resolves when done, or after 5 s.
 */
export function killProcessGroup(client: SshClientLike, pid: number): Promise<void> {
  const kill = new Promise<void>((resolve) => {
    try {
      client.exec(`kill -KILL -- -${pid} 2>/dev/null`, {}, (error, channel) => {
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
  return Promise.race([kill, limit]);
}
