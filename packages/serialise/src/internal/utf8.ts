/**
 * UTF-8 as pickle uses it: CPython writes str with the "surrogatepass" error handler, so a lone
 * surrogate (which a JavaScript string can hold too) travels as its 3-byte form. TextEncoder and
 * TextDecoder would replace those with U+FFFD, so they are only used where the text is known to
 * be well formed; the hand-written loops below handle the rest and short strings (faster there).
 */

// ignoreBOM: true keeps a leading U+FEFF in the string instead of dropping it.
const fatalDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/** Strings at most this long are encoded by hand. */
const SHORT = 32;

type WellFormed = { isWellFormed(): boolean };

/**
 * Writes `s` as UTF-8 (surrogatepass) at `pos` and returns the position after it. The caller
 * guarantees room for `3 * s.length` bytes.
 */
export function writeUtf8(s: string, buf: Uint8Array, pos: number): number {
  const len = s.length;
  if (len > SHORT && (s as unknown as WellFormed).isWellFormed()) {
    return pos + encoder.encodeInto(s, buf.subarray(pos)).written;
  }
  let p = pos;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[p++] = c;
    } else if (c < 0x800) {
      buf[p++] = 0xc0 | (c >> 6);
      buf[p++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < len) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        buf[p++] = 0xf0 | (cp >> 18);
        buf[p++] = 0x80 | ((cp >> 12) & 0x3f);
        buf[p++] = 0x80 | ((cp >> 6) & 0x3f);
        buf[p++] = 0x80 | (cp & 0x3f);
        i++;
      } else {
        buf[p++] = 0xe0 | (c >> 12);
        buf[p++] = 0x80 | ((c >> 6) & 0x3f);
        buf[p++] = 0x80 | (c & 0x3f);
      }
    } else {
      // Three bytes, lone surrogates included (surrogatepass).
      buf[p++] = 0xe0 | (c >> 12);
      buf[p++] = 0x80 | ((c >> 6) & 0x3f);
      buf[p++] = 0x80 | (c & 0x3f);
    }
  }
  return p;
}

/** The exact UTF-8 (surrogatepass) length of `s`. */
export function utf8Length(s: string): number {
  const len = s.length;
  let n = len;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) {
      if (c < 0x800) n += 1;
      else if (c >= 0xd800 && c <= 0xdbff && i + 1 < len) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          n += 2;
          i++;
        } else n += 2;
      } else n += 2;
    }
  }
  return n;
}

type Slice = (this: Uint8Array, start: number, end: number) => string;

/**
 * Node's native Latin-1 slice (Buffer.prototype.latin1Slice, the method behind
 * buffer.toString("latin1")), which also works on a plain Uint8Array; it is much faster than
 * building short strings in JavaScript. Falls back to String.fromCharCode elsewhere.
 */
const nativeLatin1 = (globalThis as { Buffer?: { prototype?: { latin1Slice?: unknown } } }).Buffer
  ?.prototype?.latin1Slice as Slice | undefined;

/** Decodes bytes known to be ASCII (or wanted as Latin-1). */
function latin1(bytes: Uint8Array, start: number, end: number): string {
  if (nativeLatin1 !== undefined) return nativeLatin1.call(bytes, start, end);
  return decodeLatin1Js(bytes, start, end);
}

const fcc = String.fromCharCode;

/**
 * Short ASCII text: one fromCharCode call with a fixed number of arguments is about twice as
 * fast as a native slice at these lengths, where the call into C++ dominates.
 */
function shortAscii(b: Uint8Array, s: number, n: number): string {
  switch (n) {
    case 0:
      return "";
    case 1:
      return fcc(b[s] as number);
    case 2:
      return fcc(b[s] as number, b[s + 1] as number);
    case 3:
      return fcc(b[s] as number, b[s + 1] as number, b[s + 2] as number);
    case 4:
      return fcc(b[s] as number, b[s + 1] as number, b[s + 2] as number, b[s + 3] as number);
    case 5:
      return fcc(
        b[s] as number,
        b[s + 1] as number,
        b[s + 2] as number,
        b[s + 3] as number,
        b[s + 4] as number,
      );
    case 6:
      return fcc(
        b[s] as number,
        b[s + 1] as number,
        b[s + 2] as number,
        b[s + 3] as number,
        b[s + 4] as number,
        b[s + 5] as number,
      );
    case 7:
      return fcc(
        b[s] as number,
        b[s + 1] as number,
        b[s + 2] as number,
        b[s + 3] as number,
        b[s + 4] as number,
        b[s + 5] as number,
        b[s + 6] as number,
      );
    case 8:
      return fcc(
        b[s] as number,
        b[s + 1] as number,
        b[s + 2] as number,
        b[s + 3] as number,
        b[s + 4] as number,
        b[s + 5] as number,
        b[s + 6] as number,
        b[s + 7] as number,
      );
    case 9:
      return fcc(
        b[s] as number,
        b[s + 1] as number,
        b[s + 2] as number,
        b[s + 3] as number,
        b[s + 4] as number,
        b[s + 5] as number,
        b[s + 6] as number,
        b[s + 7] as number,
        b[s + 8] as number,
      );
    case 10:
      return fcc(
        b[s] as number,
        b[s + 1] as number,
        b[s + 2] as number,
        b[s + 3] as number,
        b[s + 4] as number,
        b[s + 5] as number,
        b[s + 6] as number,
        b[s + 7] as number,
        b[s + 8] as number,
        b[s + 9] as number,
      );
    case 11:
      return fcc(
        b[s] as number,
        b[s + 1] as number,
        b[s + 2] as number,
        b[s + 3] as number,
        b[s + 4] as number,
        b[s + 5] as number,
        b[s + 6] as number,
        b[s + 7] as number,
        b[s + 8] as number,
        b[s + 9] as number,
        b[s + 10] as number,
      );
    case 12:
      return fcc(
        b[s] as number,
        b[s + 1] as number,
        b[s + 2] as number,
        b[s + 3] as number,
        b[s + 4] as number,
        b[s + 5] as number,
        b[s + 6] as number,
        b[s + 7] as number,
        b[s + 8] as number,
        b[s + 9] as number,
        b[s + 10] as number,
        b[s + 11] as number,
      );
    case 13:
      return fcc(
        b[s] as number,
        b[s + 1] as number,
        b[s + 2] as number,
        b[s + 3] as number,
        b[s + 4] as number,
        b[s + 5] as number,
        b[s + 6] as number,
        b[s + 7] as number,
        b[s + 8] as number,
        b[s + 9] as number,
        b[s + 10] as number,
        b[s + 11] as number,
        b[s + 12] as number,
      );
    case 14:
      return fcc(
        b[s] as number,
        b[s + 1] as number,
        b[s + 2] as number,
        b[s + 3] as number,
        b[s + 4] as number,
        b[s + 5] as number,
        b[s + 6] as number,
        b[s + 7] as number,
        b[s + 8] as number,
        b[s + 9] as number,
        b[s + 10] as number,
        b[s + 11] as number,
        b[s + 12] as number,
        b[s + 13] as number,
      );
    case 15:
      return fcc(
        b[s] as number,
        b[s + 1] as number,
        b[s + 2] as number,
        b[s + 3] as number,
        b[s + 4] as number,
        b[s + 5] as number,
        b[s + 6] as number,
        b[s + 7] as number,
        b[s + 8] as number,
        b[s + 9] as number,
        b[s + 10] as number,
        b[s + 11] as number,
        b[s + 12] as number,
        b[s + 13] as number,
        b[s + 14] as number,
      );
    case 16:
      return fcc(
        b[s] as number,
        b[s + 1] as number,
        b[s + 2] as number,
        b[s + 3] as number,
        b[s + 4] as number,
        b[s + 5] as number,
        b[s + 6] as number,
        b[s + 7] as number,
        b[s + 8] as number,
        b[s + 9] as number,
        b[s + 10] as number,
        b[s + 11] as number,
        b[s + 12] as number,
        b[s + 13] as number,
        b[s + 14] as number,
        b[s + 15] as number,
      );
    default:
      return latin1(b, s, s + n);
  }
}

/**
 * Decodes UTF-8 (surrogatepass) from `bytes[start, end)`. Returns `undefined` for bytes that are
 * not UTF-8 (the caller reports where).
 */
export function decodeUtf8(bytes: Uint8Array, start: number, end: number): string | undefined {
  if (end - start <= 64) {
    for (let i = start; i < end; i++) {
      if ((bytes[i] as number) >= 0x80) return decodeUtf8Slow(bytes, start, end);
    }
    return end - start <= 16 ? shortAscii(bytes, start, end - start) : latin1(bytes, start, end);
  }
  try {
    return fatalDecoder.decode(bytes.subarray(start, end));
  } catch {
    return decodeUtf8Slow(bytes, start, end);
  }
}

const CHUNK = 4096;

function decodeUtf8Slow(bytes: Uint8Array, start: number, end: number): string | undefined {
  const units: number[] = [];
  let out = "";
  let i = start;
  while (i < end) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      units.push(b);
      i++;
    } else if (b >= 0xc2 && b <= 0xdf) {
      if (i + 1 >= end) return undefined;
      const b1 = bytes[i + 1] as number;
      if ((b1 & 0xc0) !== 0x80) return undefined;
      units.push(((b & 0x1f) << 6) | (b1 & 0x3f));
      i += 2;
    } else if (b >= 0xe0 && b <= 0xef) {
      if (i + 2 >= end) return undefined;
      const b1 = bytes[i + 1] as number;
      const b2 = bytes[i + 2] as number;
      if ((b1 & 0xc0) !== 0x80 || (b2 & 0xc0) !== 0x80) return undefined;
      if (b === 0xe0 && b1 < 0xa0) return undefined; // overlong
      // 0xED 0xA0..0xBF is a surrogate: accepted, as CPython's surrogatepass does.
      units.push(((b & 0x0f) << 12) | ((b1 & 0x3f) << 6) | (b2 & 0x3f));
      i += 3;
    } else if (b >= 0xf0 && b <= 0xf4) {
      if (i + 3 >= end) return undefined;
      const b1 = bytes[i + 1] as number;
      const b2 = bytes[i + 2] as number;
      const b3 = bytes[i + 3] as number;
      if ((b1 & 0xc0) !== 0x80 || (b2 & 0xc0) !== 0x80 || (b3 & 0xc0) !== 0x80) return undefined;
      if ((b === 0xf0 && b1 < 0x90) || (b === 0xf4 && b1 >= 0x90)) return undefined;
      const cp =
        (((b & 0x07) << 18) | ((b1 & 0x3f) << 12) | ((b2 & 0x3f) << 6) | (b3 & 0x3f)) - 0x10000;
      units.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
      i += 4;
    } else {
      return undefined;
    }
    if (units.length >= CHUNK) {
      out += String.fromCharCode.apply(null, units);
      units.length = 0;
    }
  }
  return out + String.fromCharCode.apply(null, units);
}

/** Decodes bytes as Latin-1 (each byte one character). */
export function decodeLatin1(bytes: Uint8Array, start: number, end: number): string {
  return latin1(bytes, start, end);
}

function decodeLatin1Js(bytes: Uint8Array, start: number, end: number): string {
  let out = "";
  for (let i = start; i < end; i += CHUNK) {
    const stop = Math.min(end, i + CHUNK);
    out += String.fromCharCode.apply(null, bytes.subarray(i, stop) as unknown as number[]);
  }
  return out;
}
