/**
 * The codes Sheepdog's own packages raise, each for one kind of fault, the same in every
 * package: a bad option is `CONFIG_INVALID` whoever checks it, a closed store, remote or
 * scheduler is `CLOSED`.
 *
 * Adapters written outside this repository extend the list: they use a code from it when
 * their fault is of that kind, and otherwise a code of their own that starts with their
 * package's name in upper snake case (`"REDIS_STORE_EVICTED"` for `redis-store`), so that it
 * can never clash with a code added here later. {@link SheepdogError.code} is typed
 * `SheepdogErrorCode | (string & {})` for that reason: switch on the known codes and treat
 * any other as the adapter documents it.
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

/** A code of Sheepdog's own packages; see {@link sheepdogErrorCodes}. */
export type SheepdogErrorCode = (typeof sheepdogErrorCodes)[number];

/** Structured facts about a failure (`{ host, port }`), apart from its message. */
export type SheepdogErrorDetail = Readonly<Record<string, unknown>>;

export interface SheepdogErrorOptions {
  /** The underlying failure. */
  cause?: unknown;
  /**
   * Facts about the failure that a program may act on, such as `{ host: "fear", port: 22 }`.
   * @default {}
   */
  detail?: SheepdogErrorDetail;
}

const noDetail: SheepdogErrorDetail = Object.freeze({});

/** What a class needs for {@link SheepdogError.isInstance}: its marker and its prototype. */
interface MarkedClass<T> {
  readonly marker: symbol;
  readonly prototype: T;
}

/**
 * Marks `error` with the marker of `ownClass` and of every class above it that declares
 * its own, so that each class's `isInstance` recognises it.
 */
function markInstance(error: object, ownClass: unknown): void {
  for (let c = ownClass; typeof c === "function"; c = Object.getPrototypeOf(c)) {
    if (!Object.hasOwn(c, "marker")) continue;
    const marker = (c as { marker?: unknown }).marker;
    if (typeof marker === "symbol") Object.defineProperty(error, marker, { value: true });
  }
}

/** Whether `value` carries the marker of `markedClass` (or, without one, is its instance). */
function isMarked(value: unknown, markedClass: MarkedClass<unknown>): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (!Object.hasOwn(markedClass, "marker")) {
    return value instanceof (markedClass as unknown as abstract new () => unknown);
  }
  return (value as Record<symbol, unknown>)[markedClass.marker] === true;
}

/**
 * The one error type Sheepdog throws. Its message reads
 * `[sheepdog] [<package>] what went wrong. How to fix it.`; {@link SheepdogError.text} holds
 * the same text without the prefix, and {@link SheepdogError.detail} the facts a program may
 * act on.
 *
 * Use {@link SheepdogError.isInstance} rather than `instanceof`: it works across duplicate
 * copies of this package. A subclass declares its own marker,
 * `static override readonly marker: symbol = Symbol.for("sheepdog.error.<package>.<ClassName>")`,
 * and inherits `isInstance`, which then recognises its instances only.
 *
 * @example
 * ```ts
 * throw new SheepdogError("CONFIG_INVALID", "core", 'Unknown option "ge_opts". Did you mean "geOpts"?', {
 *   detail: { option: "ge_opts" },
 * });
 * ```
 */
export class SheepdogError extends Error {
  /**
   * The marker every SheepdogError carries, `Symbol.for("sheepdog.error")`. Subclasses
   * override it with their own.
   */
  static readonly marker: symbol = Symbol.for("sheepdog.error");

  override readonly name: string = "SheepdogError";
  /** The kind of fault: one of {@link sheepdogErrorCodes}, or an adapter's own code. */
  readonly code: SheepdogErrorCode | (string & {});
  /** The package that raised it, without the scope ("store-sqlite", "deploy-ssh", ...). */
  readonly source: string;
  /** The message without its `[sheepdog] [<package>] ` prefix. */
  readonly text: string;
  /** Facts about the failure that a program may act on, apart from the message. */
  readonly detail: SheepdogErrorDetail;

  constructor(
    code: SheepdogErrorCode | (string & {}),
    source: string,
    message: string,
    options: SheepdogErrorOptions = {},
  ) {
    super(`[sheepdog] [${source}] ${message}`, { cause: options.cause });
    this.code = code;
    this.source = source;
    this.text = message;
    this.detail = options.detail ? Object.freeze({ ...options.detail }) : noDetail;
    markInstance(this, new.target);
  }

  /**
   * True for an instance of this class (of `SheepdogError`, or of the subclass it is called
   * on), even one made by another copy of the package that defines it. A subclass without a
   * marker of its own falls back to `instanceof`.
   */
  static isInstance<T>(this: MarkedClass<T>, value: unknown): value is T {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class it is called on, whose marker counts.
    return isMarked(value, this);
  }

  /**
   * Wraps an unknown throw (an ssh2 callback error, a node errno, a string) into a
   * SheepdogError with the given code, keeping the original as `cause` and appending its
   * message. A SheepdogError passes through unchanged.
   */
  static from(
    value: unknown,
    code: SheepdogErrorCode | (string & {}),
    source: string,
    message: string,
    options: Omit<SheepdogErrorOptions, "cause"> = {},
  ): SheepdogError {
    if (SheepdogError.isInstance(value)) return value;
    const said = value instanceof Error ? value.message : String(value);
    return new SheepdogError(code, source, `${message}: ${said}`, { ...options, cause: value });
  }
}
