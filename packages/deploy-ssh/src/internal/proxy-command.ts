import { type ChildProcess, spawn } from "node:child_process";
import { Duplex } from "node:stream";

/**
 * A `ProxyCommand` as a stream: the command's stdout is what the server says, its stdin what
 * we say. Run by `/bin/sh -c "exec <command>"`, as OpenSSH does.
 */
export class ProxyCommandStream extends Duplex {
  readonly child: ChildProcess;
  /** The last few KiB the command wrote to stderr, for error messages. */
  stderrTail = "";
  /** How the command ended, once it has. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(command: string) {
    super({ allowHalfOpen: false });
    this.child = spawn("/bin/sh", ["-c", `exec ${command}`], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    const { stdin, stdout, stderr } = this.child;
    if (!stdin || !stdout || !stderr) throw new Error("spawn gave no pipes");
    stdout.on("data", (chunk: Buffer) => {
      if (!this.push(chunk)) stdout.pause();
    });
    stdout.on("end", () => this.push(null));
    stderr.on("data", (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString("utf8")).slice(-4096);
    });
    stdin.on("error", () => {
      // EPIPE when the command has gone: its exit is reported by "close" below.
    });
    this.child.on("error", (error) => this.destroy(error));
    this.child.on("exit", (code, signal) => {
      this.exit = { code, signal };
    });
    this.child.on("close", () => {
      this.push(null);
      this.emit("proxy-exit");
    });
  }

  override _read(): void {
    this.child.stdout?.resume();
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    const stdin = this.child.stdin;
    if (!stdin || stdin.destroyed) {
      callback();
      return;
    }
    stdin.write(chunk, () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.child.stdin?.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.child.stdin?.destroy();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    callback(error);
  }
}
