/**
 * The few methods of an ssh2 `Client` that Sheepdog calls, so that `connect({ client })` takes
 * a client from your own copy of ssh2 without Sheepdog's types depending on the library's.
 */
export interface SshClientLike {
  exec(
    command: string,
    options: Record<string, never>,
    callback: (error: Error | undefined, channel: SshChannelLike) => void,
  ): unknown;
  sftp(callback: (error: Error | undefined, sftp: SftpLike) => void): unknown;
  end(): unknown;
  on(event: "close", listener: () => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  removeListener(event: "close", listener: () => void): unknown;
  removeListener(event: "error", listener: (error: Error) => void): unknown;
}

/** The parts of an ssh2 exec channel that Sheepdog uses. */
export interface SshChannelLike {
  on(event: "data", listener: (data: Buffer) => void): unknown;
  on(
    event: "exit",
    listener: (code: number | null, signal?: string, dump?: boolean, desc?: string) => void,
  ): unknown;
  on(event: "close", listener: () => void): unknown;
  stderr: { on(event: "data", listener: (data: Buffer) => void): unknown };
  end(data?: Buffer): unknown;
  signal(signalName: string): unknown;
  close(): unknown;
}

/** File attributes as SFTP reports them. */
export interface SftpStatsLike {
  mode: number;
  size: number;
  isDirectory(): boolean;
}

/** The parts of an ssh2 SFTP session that Sheepdog uses. */
export interface SftpLike {
  open(
    path: string,
    flags: "r",
    callback: (error: Error | undefined, handle: Buffer) => void,
  ): unknown;
  open(
    path: string,
    flags: "w",
    attributes: { mode: number },
    callback: (error: Error | undefined, handle: Buffer) => void,
  ): unknown;
  write(
    handle: Buffer,
    buffer: Buffer,
    offset: number,
    length: number,
    position: number,
    callback: (error: Error | undefined | null) => void,
  ): unknown;
  fchmod(
    handle: Buffer,
    mode: number,
    callback: (error: Error | undefined | null) => void,
  ): unknown;
  close(handle: Buffer, callback: (error: Error | undefined | null) => void): unknown;
  rename(from: string, to: string, callback: (error: Error | undefined | null) => void): unknown;
  ext_openssh_rename(
    from: string,
    to: string,
    callback: (error: Error | undefined | null) => void,
  ): unknown;
  unlink(path: string, callback: (error: Error | undefined | null) => void): unknown;
  fstat(
    handle: Buffer,
    callback: (error: Error | undefined, stats: SftpStatsLike) => void,
  ): unknown;
  read(
    handle: Buffer,
    buffer: Buffer,
    offset: number,
    length: number,
    position: number,
    callback: (error: Error | undefined, bytesRead: number) => void,
  ): unknown;
  stat(path: string, callback: (error: Error | undefined, stats: SftpStatsLike) => void): unknown;
  mkdir(
    path: string,
    attributes: { mode: number },
    callback: (error: Error | undefined | null) => void,
  ): unknown;
  end(): unknown;
  on(event: "close", listener: () => void): unknown;
}

/** What ssh2 tells of a connection made to a forwarded port. */
export interface TcpConnectionInfo {
  destIP: string;
  destPort: number;
  srcIP: string;
  srcPort: number;
}

/** The methods of an ssh2 `Client` that a remote port forward needs. */
export interface ForwardingClientLike {
  forwardIn(
    bindAddr: string,
    bindPort: number,
    callback: (error: Error | undefined, port: number) => void,
  ): unknown;
  unforwardIn(bindAddr: string, bindPort: number, callback: (error?: Error) => void): unknown;
  on(
    event: "tcp connection",
    listener: (
      info: TcpConnectionInfo,
      accept: () => import("node:stream").Duplex,
      reject: () => void,
    ) => void,
  ): unknown;
  removeListener(event: "tcp connection", listener: (...args: never[]) => void): unknown;
}
