/**
 * Every failure Sheepdog reports has one of these codes. The set is closed so that callers
 * can switch on it; a package that needs a new kind of failure adds its code here.
 */
export const sheepdogErrorCodes = [
  /** A configuration value is missing, of the wrong type, or unknown. */
  "CONFIG_INVALID",
  /** Input that is not configuration (arguments, a function, a file) is unusable. */
  "INVALID_INPUT",
  /** Python source given to `py` / `pyFile` cannot be used as a function. */
  "PYTHON_SOURCE",
  /** A value cannot be pickled. */
  "PICKLE_ENCODE",
  /** Bytes are not a pickle this codec can read (truncated, invalid, hostile). */
  "PICKLE_DECODE",
  /** The store's file cannot be opened, read or written. */
  "STORE_IO",
  /** The store's file is not a Sheepdog database, or is damaged. */
  "STORE_CORRUPT",
  /** The store's file was written by a newer Sheepdog. */
  "STORE_VERSION",
  /** No request with that id. */
  "REQUEST_NOT_FOUND",
  /** The request has no task with that index. */
  "TASK_NOT_FOUND",
  /** A store, remote, scheduler or server was used after close(). */
  "CLOSED",
  /** The SSH configuration (~/.ssh/config, key files) cannot be used. */
  "SSH_CONFIG",
  /** No key was accepted by the server, or a key cannot be used. */
  "SSH_AUTH",
  /** The host's key is not in known_hosts. */
  "SSH_HOST_KEY_UNKNOWN",
  /** The host's key differs from the one in known_hosts. */
  "SSH_HOST_KEY_CHANGED",
  /** The connection could not be made or was lost. */
  "SSH_CONNECT",
  /** A connect or command deadline passed. */
  "TIMEOUT",
  /** A remote command or file operation failed. */
  "REMOTE_FAILED",
  /** The scheduler refused the job (qsub failed). */
  "SUBMIT_FAILED",
  /** The scheduler could not be asked about a job, or cancel failed. */
  "SCHEDULER_FAILED",
  /** The HTTP server cannot start or serve (port taken by something else, ...). */
  "SERVER_FAILED",
  /** A task failed; the error carries its arguments and cause. */
  "TASK_FAILED",
  /** The caller aborted the operation. */
  "ABORTED",
  /** A bug in Sheepdog: please report it. */
  "INTERNAL",
] as const;

export type SheepdogErrorCode = (typeof sheepdogErrorCodes)[number];

const marker = Symbol.for("sheepdog.error");

export interface SheepdogErrorOptions {
  /** The underlying failure. */
  cause?: unknown;
}

/**
 * The one error type Sheepdog throws. Its message reads
 * `[sheepdog] [<package>] what went wrong. How to fix it.`
 *
 * Use {@link SheepdogError.isInstance} rather than `instanceof`: it works across duplicate
 * copies of this package.
 *
 * @example
 * ```ts
 * throw new SheepdogError("CONFIG_INVALID", "core", 'Unknown option "ge_opts". Did you mean "geOpts"?');
 * ```
 */
export class SheepdogError extends Error {
  override readonly name: string = "SheepdogError";
  readonly code: SheepdogErrorCode;
  /** The package that raised it, without the scope ("store-sqlite", "deploy-ssh", ...). */
  readonly source: string;

  constructor(
    code: SheepdogErrorCode,
    source: string,
    message: string,
    options: SheepdogErrorOptions = {},
  ) {
    super(`[sheepdog] [${source}] ${message}`, { cause: options.cause });
    this.code = code;
    this.source = source;
    Object.defineProperty(this, marker, { value: true });
  }

  /** True for any SheepdogError, even one made by another copy of this package. */
  static isInstance(value: unknown): value is SheepdogError {
    return typeof value === "object" && value !== null && marker in value;
  }

  /**
   * Wraps an unknown throw (an ssh2 callback error, a node errno, a string) into a
   * SheepdogError with the given code, keeping the original as `cause`. A SheepdogError
   * passes through unchanged.
   */
  static from(
    value: unknown,
    code: SheepdogErrorCode,
    source: string,
    message: string,
  ): SheepdogError {
    if (SheepdogError.isInstance(value)) return value;
    const detail = value instanceof Error ? value.message : String(value);
    return new SheepdogError(code, source, `${message}: ${detail}`, { cause: value });
  }
}
