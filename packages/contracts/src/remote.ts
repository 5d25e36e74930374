/** Options for one remote command. */
export interface ExecOptions {
  /** Written to the command's standard input, which is then closed. */
  stdin?: string | Uint8Array;
  /** Aborting kills the command (or closes its channel) and rejects with `ABORTED`. */
  signal?: AbortSignal;
  /** Rejects with `TIMEOUT` (and kills the command) after this many milliseconds. */
  timeoutMs?: number;
  /**
   * Called with each piece of standard output as it arrives, for a command that runs for a
   * while and says something before it ends (the result still holds all of it).
   */
  onStdout?: (chunk: Uint8Array) => void;
}

/**
 * Connections made to a port on a remote machine's loopback, carried back to a port on this
 * machine (as `ssh -R` does). See {@link Remote.tunnelBack}.
 */
export interface ReverseTunnel {
  /** The port on the remote machine's loopback (127.0.0.1) that leads back here. */
  readonly remotePort: number;
  /** Resolves when the tunnel has ended: closed, or its connection lost. */
  readonly ended: Promise<void>;
  /** Stops listening on the remote machine; connections under way are ended. Idempotent. */
  close(): Promise<void>;
}

/** How a command ended. */
export interface ExecResult {
  stdout: string;
  stderr: string;
  /** The exit code, or `null` when a signal ended it. */
  code: number | null;
  /** The signal's name ("KILL", "TERM", ...) when a signal ended it, else `null`. */
  signal: string | null;
}

/**
 * A machine that Sheepdog runs commands on and puts files on: the cluster's head node over
 * SSH (`@sheepdog/deploy-ssh`), or this machine itself.
 *
 * Commands are run by a POSIX shell in the login user's home directory. Relative paths are
 * relative to that home directory.
 */
export interface Remote {
  /** A short name for messages: `user@host:port`, or `local`. */
  readonly name: string;

  /**
   * Runs a shell command. MUST resolve with the exit code or signal however the command
   * ended; MUST reject (with a `SheepdogError`) only when the command could not be run or
   * its outcome not learnt (connection lost, timeout, abort).
   */
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;

  /**
   * Writes a file, replacing any file of that name, creating no directories.
   * @default mode 0o600
   */
  upload(path: string, contents: string | Uint8Array, mode?: number): Promise<void>;

  /**
   * Optional: listens on the remote machine's loopback, on a port it picks, and carries each
   * connection made there to `localPort` on this machine's loopback. Over SSH this is a
   * remote port forward, which OpenSSH allows by default (`AllowTcpForwarding yes`, no
   * `GatewayPorts`). Core uses it to reach a client that the cluster's nodes cannot reach.
   */
  tunnelBack?(localPort: number): Promise<ReverseTunnel>;

  /** Reads a whole file. Rejects with `REMOTE_FAILED` when it cannot. */
  readFile(path: string): Promise<Uint8Array>;

  /** Creates a directory and its parents (`mkdir -p`). @default mode 0o700 */
  mkdir(path: string, mode?: number): Promise<void>;

  /**
   * Ends the connection. Calls in flight reject with `CLOSED` (their commands are stopped), as
   * do later calls; a second close is harmless.
   */
  close(): Promise<void>;
}
