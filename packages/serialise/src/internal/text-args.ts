/**
 * Scanners for the text arguments of protocol 0 and 1 opcodes (INT, LONG, FLOAT, STRING,
 * UNICODE, GET, PUT). A pickle is untrusted input: each scanner reads its text once, left to
 * right, with no backtracking, so its time is linear in the text whatever the text is.
 */

import { decodeLatin1 } from "./utf8.js";

const PLUS = 0x2b;
const MINUS = 0x2d;
const DOT = 0x2e;
const BACKSLASH = 0x5c;

/** Code units gathered before one String.fromCharCode call (it takes a bounded argument list). */
const CHUNK = 4096;

/** Runs at least this long are added as one native slice or repeat instead of unit by unit. */
const LONG_RUN = 32;

/** Builds a string from UTF-16 code units, a chunk at a time, and from runs of bytes. */
class TextBuilder {
  #units: number[] = [];
  #text = "";

  push(unit: number): void {
    this.#units.push(unit);
    if (this.#units.length >= CHUNK) this.#flush();
  }

  /** Adds `bytes[start, end)`, each byte one character. */
  pushLatin1(bytes: Uint8Array, start: number, end: number): void {
    if (end - start < LONG_RUN) {
      for (let i = start; i < end; i++) this.push(bytes[i] as number);
    } else {
      this.#flush();
      this.#text += decodeLatin1(bytes, start, end);
    }
  }

  /** Adds `unit` `count` times. */
  pushRepeated(unit: number, count: number): void {
    if (count < LONG_RUN) {
      for (let i = 0; i < count; i++) this.push(unit);
    } else {
      this.#flush();
      this.#text += String.fromCharCode(unit).repeat(count);
    }
  }

  finish(): string {
    this.#flush();
    return this.#text;
  }

  #flush(): void {
    this.#text += String.fromCharCode.apply(null, this.#units);
    this.#units.length = 0;
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** The index after the run of ASCII digits in `text` that starts at `i`. */
function skipDigits(text: string, i: number): number {
  while (i < text.length && isDigit(text.charCodeAt(i))) i++;
  return i;
}

/** The index after an optional `+` or `-` at `i`. */
function skipSign(text: string, i: number): number {
  const c = text.charCodeAt(i);
  return c === PLUS || c === MINUS ? i + 1 : i;
}

/** `text` up to its first NUL: what C code reads of it as a string. */
export function cString(text: string): string {
  const nul = text.indexOf("\0");
  return nul < 0 ? text : text.slice(0, nul);
}

/** C's isspace in the C locale, and Python's Py_ISSPACE: space, \t, \n, \v, \f, \r. */
function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

function skipSpaces(text: string, i: number): number {
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

/** The value of the digit `c` in `radix` (2, 8, 10 or 16), or -1. */
function digitValue(c: number, radix: number): number {
  const d = hexValue(c);
  return d < radix ? d : -1;
}

const LONG_MAX = (1n << 63n) - 1n;

/**
 * C's `strtol(text, &end, 0)` for a 64-bit long, as CPython's INT opcode first reads its text
 * (`text` cut at its first NUL): leading spaces, a sign, then `0x` hex, `0` octal or decimal
 * digits. The value when it reads all of `text` without overflowing; `undefined` when it stops
 * before the end or overflows (CPython then reads the text as `int(text, 0)`). Reading stops at
 * the first overflow, so the time is linear in the text.
 */
export function strtolWhole(text: string): bigint | undefined {
  let i = skipSpaces(text, 0);
  const negative = text.charCodeAt(i) === MINUS;
  i = skipSign(text, i);
  let radix = 10;
  if (text.charCodeAt(i) === 0x30) {
    const hex = (text.charCodeAt(i + 1) | 0x20) === 0x78 && hexValue(text.charCodeAt(i + 2)) >= 0;
    radix = hex ? 16 : 8;
    if (hex) i += 2;
  }
  const start = i;
  const limit = negative ? LONG_MAX + 1n : LONG_MAX;
  const big = BigInt(radix);
  let small = 0;
  let value = -1n; // switched to once `small` could lose precision
  for (; i < text.length; i++) {
    const d = digitValue(text.charCodeAt(i), radix);
    if (d < 0) break;
    if (value < 0n) {
      small = small * radix + d;
      if (small >= 2 ** 48) value = BigInt(small);
    } else {
      value = value * big + BigInt(d);
      if (value > limit) return undefined;
    }
  }
  // No digits: C's strtol reads nothing, and only an empty text is then read whole (as 0).
  if (i === start) return text.length === 0 ? 0n : undefined;
  if (i < text.length) return undefined;
  const magnitude = value < 0n ? BigInt(small) : value;
  return negative ? -magnitude : magnitude;
}

/** An integer literal as Python's `int(text, 0)` reads it. */
export interface IntText {
  negative: boolean;
  radix: 2 | 8 | 10 | 16;
  /** The digits, without prefix and underscores. */
  digits: string;
}

/** The radix a Python literal's prefix gives at `i` (`0x`, `0o`, `0b`), or 10 without one. */
function literalRadix(text: string, i: number): 2 | 8 | 10 | 16 {
  if (text.charCodeAt(i) !== 0x30) return 10;
  const letter = text.charCodeAt(i + 1) | 0x20;
  return letter === 0x78 ? 16 : letter === 0x6f ? 8 : letter === 0x62 ? 2 : 10;
}

/**
 * Python's `int(text, 0)` (PyLong_FromString), as CPython reads LONG and the INTs that strtol does
 * not: spaces around, a sign, a `0x` / `0o` / `0b` prefix, single underscores between digits
 * (and after a prefix), no leading zeros in a non-zero decimal. `undefined` when Python refuses.
 */
export function pythonIntText(text: string): IntText | undefined {
  let i = skipSpaces(text, 0);
  const negative = text.charCodeAt(i) === MINUS;
  i = skipSign(text, i);
  const radix = literalRadix(text, i);
  let underscoreAllowed = false;
  if (radix !== 10) {
    i += 2;
    underscoreAllowed = true;
  }
  const pieces: string[] = [];
  let runStart = i;
  let count = 0;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5f && underscoreAllowed) {
      pieces.push(text.slice(runStart, i));
      runStart = i + 1;
      underscoreAllowed = false;
    } else if (digitValue(c, radix) >= 0) {
      underscoreAllowed = true;
      count++;
    } else break;
  }
  if (count === 0 || text.charCodeAt(i - 1) === 0x5f) return undefined;
  pieces.push(text.slice(runStart, i));
  if (skipSpaces(text, i) !== text.length) return undefined;
  const digits = pieces.join("");
  // A decimal with a leading zero must be all zeros ("00" yes, "007" no).
  if (radix === 10 && digits.charCodeAt(0) === 0x30 && !/^0+$/.test(digits)) return undefined;
  return { negative, radix, digits };
}

/**
 * A float as CPython's FLOAT reads it (PyOS_string_to_double of `text` cut at its first NUL): no
 * spaces, `inf`, `infinity` and `nan` in any case with a sign, else a decimal literal. `undefined`
 * when it is not a float, `null` for a literal too large for a double (CPython's OverflowError).
 */
export function floatText(text: string): number | null | undefined {
  const start = skipSign(text, 0);
  const body = text.length - start <= 8 ? text.slice(start).toLowerCase() : "";
  const sign = text.charCodeAt(0) === MINUS ? -1 : 1;
  if (body === "inf" || body === "infinity") return sign * Number.POSITIVE_INFINITY;
  if (body === "nan") return Number.NaN;
  if (!isFloatText(text)) return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

/** True for 1 to 10 ASCII digits: the memo indices of GET and PUT. */
export function isIndexText(text: string): boolean {
  return text.length >= 1 && text.length <= 10 && skipDigits(text, 0) === text.length;
}

/**
 * True for a finite float literal, `[+-]?(digits[.digits?] | .digits)([eE][+-]?digits)?` (what
 * JavaScript's `Number` then reads exactly as Python's `float` does).
 */
export function isFloatText(text: string): boolean {
  const start = skipSign(text, 0);
  let end = skipDigits(text, start);
  let digits = end - start;
  if (text.charCodeAt(end) === DOT) {
    const fraction = skipDigits(text, end + 1);
    digits += fraction - end - 1;
    end = fraction;
  }
  if (digits === 0) return false;
  if ((text.charCodeAt(end) | 0x20) === 0x65) {
    const exponent = skipSign(text, end + 1);
    end = skipDigits(text, exponent);
    if (end === exponent) return false;
  }
  return end === text.length;
}

/** The value of a hex digit byte, or -1. */
function hexValue(h: number | undefined): number {
  if (h === undefined) return -1;
  if (isDigit(h)) return h - 0x30;
  const lower = h | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : -1;
}

function isOctal(c: number | undefined): c is number {
  return c !== undefined && c >= 0x30 && c <= 0x37;
}

/** The byte a one-letter escape (`\n`, `\'`, ...) stands for, or -1. */
function simpleEscape(e: number): number {
  switch (e) {
    case 0x5c: // \\
    case 0x27: // \'
    case 0x22: // \"
      return e;
    case 0x6e: // \n
      return 0x0a;
    case 0x72: // \r
      return 0x0d;
    case 0x74: // \t
      return 0x09;
    case 0x61: // \a
      return 0x07;
    case 0x62: // \b
      return 0x08;
    case 0x66: // \f
      return 0x0c;
    case 0x76: // \v
      return 0x0b;
    default:
      return -1;
  }
}

/**
 * Python's `codecs.escape_decode` of `bytes[start, end)` (the quoted text of STRING), each byte
 * one character (Latin-1). `undefined` for a trailing backslash or a bad `\x` escape.
 */
export function escapeDecode(bytes: Uint8Array, start: number, end: number): string | undefined {
  const out = new TextBuilder();
  let i = start;
  while (i < end) {
    const literal = i;
    while (i < end && bytes[i] !== BACKSLASH) i++;
    out.pushLatin1(bytes, literal, i);
    if (i >= end) break;
    i++; // the backslash
    if (i >= end) return undefined; // a trailing backslash
    const e = bytes[i++] as number;
    const simple = simpleEscape(e);
    if (simple >= 0) {
      out.push(simple);
    } else if (e === 0x0a) {
      // A backslash-newline continues the line: nothing.
    } else if (e === 0x78) {
      // \xhh
      const hi = i + 1 < end ? hexValue(bytes[i]) : -1;
      const lo = i + 1 < end ? hexValue(bytes[i + 1]) : -1;
      if (hi < 0 || lo < 0) return undefined;
      out.push(hi * 16 + lo);
      i += 2;
    } else if (isOctal(e)) {
      // \o, \oo or \ooo, modulo 256 as CPython does
      let value = e - 0x30;
      for (let k = 0; k < 2 && i < end && isOctal(bytes[i]); k++) {
        value = value * 8 + (bytes[i++] as number) - 0x30;
      }
      out.push(value & 0xff);
    } else {
      out.push(BACKSLASH);
      out.push(e);
    }
  }
  return out.finish();
}

/**
 * Python's raw-unicode-escape codec of `bytes[start, end)` (the text of UNICODE): bytes are
 * Latin-1 characters, except `\uXXXX` and `\UXXXXXXXX` after an odd run of backslashes.
 * `undefined` for a short or non-hex escape or a code point past U+10FFFF.
 */
export function rawUnicodeEscapeDecode(
  bytes: Uint8Array,
  start: number,
  end: number,
): string | undefined {
  const out = new TextBuilder();
  let i = start;
  while (i < end) {
    const literal = i;
    while (i < end && bytes[i] !== BACKSLASH) i++;
    out.pushLatin1(bytes, literal, i);
    if (i >= end) break;
    let j = i;
    while (j < end && bytes[j] === BACKSLASH) j++;
    const next = bytes[j];
    const isEscape = (j - i) % 2 === 1 && j < end && (next === 0x75 || next === 0x55);
    out.pushRepeated(BACKSLASH, isEscape ? j - i - 1 : j - i);
    i = j;
    if (isEscape) {
      const digits = next === 0x75 ? 4 : 8;
      if (j + 1 + digits > end) return undefined;
      let cp = 0;
      for (let k = j + 1; k < j + 1 + digits; k++) {
        const d = hexValue(bytes[k]);
        if (d < 0) return undefined;
        cp = cp * 16 + d;
      }
      if (cp > 0x10ffff) return undefined;
      if (cp >= 0x10000) {
        out.push(0xd800 + ((cp - 0x10000) >> 10));
        out.push(0xdc00 + ((cp - 0x10000) & 0x3ff));
      } else {
        out.push(cp);
      }
      i = j + 1 + digits;
    }
  }
  return out.finish();
}
