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

/** True for `[+-]?[0-9]+`: the decimal integers of INT and LONG. */
export function isDecimalText(text: string): boolean {
  const start = skipSign(text, 0);
  const end = skipDigits(text, start);
  return end > start && end === text.length;
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
