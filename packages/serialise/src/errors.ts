import { SheepdogError } from "@sheepdog/contracts";
import { source } from "./internal/source.js";

/**
 * Thrown by `decode` for bytes that are not a pickle it can read: truncated, invalid, hostile, or
 * using a feature this codec refuses (persistent ids, extension codes, out-of-band buffers).
 * Its code is `PICKLE_DECODE`.
 */
export class PickleDecodeError extends SheepdogError {
  static override readonly marker: symbol = Symbol.for(
    "sheepdog.error.serialise.PickleDecodeError",
  );
  override readonly name: string = "PickleDecodeError";
  /** The byte offset of the opcode that failed (or of the end of the input). */
  readonly offset: number;
  /** The name of that opcode (`"BINUNICODE"`), or `undefined` at the end of the input. */
  readonly opcode: string | undefined;
  /** What went wrong, without the position and advice. */
  readonly reason: string;

  constructor(offset: number, opcode: string | undefined, reason: string, hint?: string) {
    const at = opcode === undefined ? `at byte ${offset}` : `at byte ${offset} (${opcode})`;
    super(
      "PICKLE_DECODE",
      source,
      `Cannot decode pickle ${at}: ${reason}. ${hint ?? "The bytes are not a complete, valid pickle: check that they are exactly what pickle.dumps wrote."}`,
      { detail: { offset, opcode, reason } },
    );
    this.offset = offset;
    this.opcode = opcode;
    this.reason = reason;
  }
}

/**
 * Thrown by `encode` for a value it cannot pickle (a function, `undefined`, a Date, an unhashable
 * dict key, nesting deeper than `maxDepth`). Its code is `PICKLE_ENCODE`.
 */
export class PickleEncodeError extends SheepdogError {
  static override readonly marker: symbol = Symbol.for(
    "sheepdog.error.serialise.PickleEncodeError",
  );
  override readonly name: string = "PickleEncodeError";
  /** Where the value sits in the input, e.g. `value[2].name`. */
  readonly path: string;

  constructor(path: string, message: string) {
    super("PICKLE_ENCODE", source, `Cannot pickle ${path}: ${message}`, { detail: { path } });
    this.path = path;
  }
}
