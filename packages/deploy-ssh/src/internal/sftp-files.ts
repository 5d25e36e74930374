import { randomBytes } from "node:crypto";
import { posix } from "node:path";
import { SheepdogError } from "@sheepdog/contracts";
import type { SftpLike, SftpStatsLike } from "../client-like.js";
import { type ConnectionState, lostError } from "./connection-state.js";
import { source } from "./source.js";

/** SFTP status codes (draft-ietf-secsh-filexfer-02). */
const SFTP_EOF = 1;
const SFTP_NO_SUCH_FILE = 2;
const SFTP_PERMISSION_DENIED = 3;

/** Reads and writes go in pieces of 32 KiB, up to 16 in flight. */
const CHUNK = 32 * 1024;
const IN_FLIGHT = 16;

function sftpCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

/** Runs `work` for each item with up to {@link IN_FLIGHT} at once. */
async function pipelined(count: number, work: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, count) }, worker));
}

/** The connection's SFTP session, started on first use and kept while it lives. */
export function openSftp(state: ConnectionState, name: string): Promise<SftpLike> {
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
                  source,
                  `Cannot start SFTP on ${name}. Check that the server has an sftp Subsystem`,
                )
              : lostError(name, state, "SFTP start"),
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
      reject(SheepdogError.from(error, "REMOTE_FAILED", source, "Cannot start SFTP"));
    }
  });
  return state.sftp;
}

/** The file operations of a Remote, over one SFTP session. */
export class SftpFiles {
  constructor(
    private readonly state: ConnectionState,
    private readonly sftp: SftpLike,
    /** The remote's name, for messages. */
    private readonly name: string,
  ) {}

  /** Runs one SFTP call as a promise, with errors normalised. */
  private call<T>(
    what: string,
    fn: (callback: (error: Error | undefined | null, value?: T) => void) => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      try {
        fn((error, value) => {
          if (error) reject(this.error(error, what));
          else resolve(value as T);
        });
      } catch (error) {
        reject(this.error(error, what));
      }
    });
  }

  private error(error: unknown, what: string): SheepdogError {
    if (SheepdogError.isInstance(error)) return error;
    if (!this.state.alive) return lostError(this.name, this.state, what);
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
      source,
      `Cannot ${what} on ${this.name}: ${cause}. ${hint}.`,
      { cause: error },
    );
  }

  /** Writes to a temporary file beside `path`, sets the mode, then renames it over `path`. */
  async writeAtomically(path: string, data: Buffer, mode: number): Promise<void> {
    const { sftp } = this;
    const temp = posix.join(
      posix.dirname(path),
      `.${posix.basename(path)}.sheepdog-${randomBytes(6).toString("hex")}`,
    );
    const what = `write ${path}`;
    const handle = await this.call<Buffer>(what, (cb) =>
      sftp.open(temp, "w", { mode: mode & 0o700 }, cb),
    );
    let renamed = false;
    try {
      try {
        await this.writeAll(handle, data, what);
        await this.call<void>(`set the mode of ${path}`, (cb) => sftp.fchmod(handle, mode, cb));
      } finally {
        await this.call<void>(what, (cb) => sftp.close(handle, cb));
      }
      await this.call<void>(`rename ${temp} to ${path}`, (cb) => {
        try {
          sftp.ext_openssh_rename(temp, path, cb);
        } catch {
          // No posix-rename: SFTP's plain rename refuses to replace, so remove the old file.
          sftp.unlink(path, () => sftp.rename(temp, path, cb));
        }
      });
      renamed = true;
    } finally {
      if (!renamed && this.state.alive) sftp.unlink(temp, () => {});
    }
  }

  private async writeAll(handle: Buffer, data: Buffer, what: string): Promise<void> {
    await pipelined(Math.ceil(data.length / CHUNK), (index) => {
      const offset = index * CHUNK;
      const length = Math.min(CHUNK, data.length - offset);
      return this.call<void>(what, (cb) =>
        this.sftp.write(handle, data, offset, length, offset, cb),
      );
    });
  }

  /** Reads a whole file with pipelined reads (ssh2's readFile has one in flight). */
  async readWhole(path: string): Promise<Buffer> {
    const { sftp } = this;
    const what = `read ${path}`;
    const handle = await this.call<Buffer>(what, (cb) => sftp.open(path, "r", cb));
    try {
      const stats = await this.call<SftpStatsLike>(what, (cb) => sftp.fstat(handle, cb));
      if (stats.isDirectory()) {
        throw new SheepdogError(
          "REMOTE_FAILED",
          source,
          `Cannot read ${path} on ${this.name}: it is a directory. Pass a file's path.`,
        );
      }
      return await this.readAll(handle, stats.size, what);
    } finally {
      await this.call<void>(what, (cb) => sftp.close(handle, cb)).catch(() => {});
    }
  }

  /** Reads `size` bytes; a file that shrank while being read is returned as it ended. */
  private async readAll(handle: Buffer, size: number, what: string): Promise<Buffer> {
    const data = Buffer.alloc(size);
    const read = { end: size };
    await pipelined(Math.ceil(size / CHUNK), (index) =>
      this.readChunk(handle, data, index * CHUNK, read, what),
    );
    return read.end < size ? data.subarray(0, read.end) : data;
  }

  /** Fills one chunk; a read may return less than asked, so it reads until full or at EOF. */
  private async readChunk(
    handle: Buffer,
    data: Buffer,
    start: number,
    read: { end: number },
    what: string,
  ): Promise<void> {
    let position = start;
    const stopAt = Math.min(start + CHUNK, data.length);
    while (position < stopAt && position < read.end) {
      const bytes = await this.readAt(handle, data, position, stopAt - position, what);
      if (bytes === 0) {
        read.end = Math.min(read.end, position);
        return;
      }
      position += bytes;
    }
  }

  private readAt(
    handle: Buffer,
    data: Buffer,
    position: number,
    length: number,
    what: string,
  ): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      try {
        this.sftp.read(handle, data, position, length, position, (error, n) => {
          // ssh2 reports end of file as an error with code SSH_FX_EOF.
          if (error && sftpCode(error) !== SFTP_EOF) reject(this.error(error, what));
          else resolve(error ? 0 : n);
        });
      } catch (error) {
        reject(this.error(error, what));
      }
    });
  }

  /** Creates `path` and its parents, like `mkdir -p`. */
  async mkdirs(path: string, mode: number): Promise<void> {
    const parts = path.split("/").filter((part) => part !== "" && part !== ".");
    let current = path.startsWith("/") ? "/" : "";
    for (const part of parts) {
      current = current === "" ? part : posix.join(current, part);
      const existing = await this.statOrUndefined(current);
      if (existing?.isDirectory()) continue;
      if (existing) {
        throw new SheepdogError(
          "REMOTE_FAILED",
          source,
          `Cannot create the directory ${path} on ${this.name}: ${current} exists and is not a directory. Remove it or choose another path.`,
        );
      }
      const dir = current;
      try {
        await this.call<void>(`create the directory ${dir}`, (cb) =>
          this.sftp.mkdir(dir, { mode }, cb),
        );
      } catch (error) {
        // Someone else may have made it meanwhile.
        if (!(await this.statOrUndefined(dir))?.isDirectory()) throw error;
      }
    }
  }

  /** The stats of `path`, or `undefined` when nothing is there. */
  private statOrUndefined(path: string): Promise<SftpStatsLike | undefined> {
    return new Promise((resolve, reject) => {
      try {
        this.sftp.stat(path, (error, stats) => {
          if (!error) resolve(stats);
          else if (sftpCode(error) === SFTP_NO_SUCH_FILE) resolve(undefined);
          else reject(this.error(error, `check ${path}`));
        });
      } catch (error) {
        reject(this.error(error, `check ${path}`));
      }
    });
  }
}
