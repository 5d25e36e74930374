import { SheepdogError } from "./errors.js";

/**
 * Checks a path given to a `Remote` method (`upload`, `readFile`, `mkdir`): it MUST be
 * a non-empty string without NUL characters. Throws `INVALID_INPUT` from `source` (the
 * adapter's package name) otherwise.
 *
 * @example
 * ```ts
 * async readFile(path: string) {
 *   checkRemotePath(path, "readFile", "my-remote");
 *   ...
 * }
 * ```
 */
export function checkRemotePath(
  path: unknown,
  operation: string,
  source: string,
): asserts path is string {
  if (typeof path === "string" && path !== "" && !path.includes("\0")) return;
  throw new SheepdogError(
    "INVALID_INPUT",
    source,
    `${operation} needs a non-empty path without NUL characters.`,
  );
}

/**
 * Checks a file mode given to `upload` or `mkdir`: an integer from 0 to 0o7777. Throws
 * `INVALID_INPUT` from `source` otherwise.
 */
export function checkFileMode(
  mode: unknown,
  operation: string,
  source: string,
): asserts mode is number {
  if (typeof mode === "number" && Number.isInteger(mode) && mode >= 0 && mode <= 0o7777) return;
  throw new SheepdogError(
    "INVALID_INPUT",
    source,
    `${operation} mode ${String(mode)} is not a file mode. Pass an integer from 0 to 0o7777, such as 0o600.`,
  );
}
