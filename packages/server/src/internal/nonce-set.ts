import { randomBytes } from "node:crypto";

/** The length of a worker request's nonce: 16 random bytes in base64url. */
const NONCE_LENGTH = 22;

/** Each base64url character's 6-bit value (by character code); -1 for any other. */
const SEXTETS = new Int8Array(128).fill(-1);
for (const [i, char] of [
  ..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
].entries()) {
  SEXTETS[char.charCodeAt(0)] = i;
}

/** A nonce's words: four of five characters (30 bits each), the fifth of the last two. */
const WORDS = 5;
/** Set in the fifth word of a taken slot; the nonce's own bits there are the low 12. */
const TAKEN = 0x8000_0000;
const INITIAL_SLOTS = 1024;

/**
 * A set of nonces, each kept as five 32-bit words in one open-addressed table at most half
 * full: exact (every character's bits are kept), at most 40 bytes a nonce, and nothing for the
 * garbage collector to follow. A `Set` of the strings held each nonce and the header it was cut
 * from, for the minute a nonce is remembered: at 10,000 requests a second, 600,000 of them.
 * The slots are chosen by a hash with a random seed, so that chosen nonces cannot pile up.
 */
export class NonceSet {
  readonly #seed = randomBytes(4).readUInt32LE(0);
  readonly #words = new Uint32Array(WORDS);
  #slots = new Uint32Array(INITIAL_SLOTS * WORDS);
  #mask = INITIAL_SLOTS - 1;
  #size = 0;

  /** How many nonces it holds. */
  get size(): number {
    return this.#size;
  }

  /**
   * Adds a nonce (22 base64url characters); whether it was new. Throws on anything else:
   * the caller has matched the nonce's pattern already.
   */
  add(nonce: string): boolean {
    const words = this.#words;
    if (!decodeNonce(nonce, words)) {
      throw new TypeError(`A nonce is ${NONCE_LENGTH} base64url characters.`);
    }
    const slots = this.#slots;
    for (let slot = this.#hash(words) & this.#mask; ; slot = (slot + 1) & this.#mask) {
      const at = slot * WORDS;
      if (slots[at + 4] === 0) {
        slots.set(words, at);
        this.#size += 1;
        if (this.#size * 2 > this.#mask + 1) this.#grow();
        return true;
      }
      if (
        slots[at] === words[0] &&
        slots[at + 1] === words[1] &&
        slots[at + 2] === words[2] &&
        slots[at + 3] === words[3] &&
        slots[at + 4] === words[4]
      ) {
        return false;
      }
    }
  }

  #hash(words: Uint32Array): number {
    let hash = this.#seed;
    for (let i = 0; i < WORDS; i++) {
      hash = Math.imul(hash ^ (words[i] as number), 0x9e37_79b1);
      hash ^= hash >>> 15;
    }
    return hash >>> 0;
  }

  #grow(): void {
    const old = this.#slots;
    const count = (this.#mask + 1) * 2;
    this.#slots = new Uint32Array(count * WORDS);
    this.#mask = count - 1;
    const words = this.#words;
    for (let at = 0; at < old.length; at += WORDS) {
      if (old[at + 4] === 0) continue;
      for (let i = 0; i < WORDS; i++) words[i] = old[at + i] as number;
      let slot = this.#hash(words) & this.#mask;
      while (this.#slots[slot * WORDS + 4] !== 0) slot = (slot + 1) & this.#mask;
      this.#slots.set(words, slot * WORDS);
    }
  }
}

/** Writes a nonce's bits into `words` (the fifth marked taken); false when it is no nonce. */
function decodeNonce(nonce: string, words: Uint32Array): boolean {
  if (nonce.length !== NONCE_LENGTH) return false;
  words.fill(0);
  for (let i = 0; i < NONCE_LENGTH; i++) {
    const code = nonce.charCodeAt(i);
    const sextet = code < 128 ? (SEXTETS[code] as number) : -1;
    if (sextet < 0) return false;
    const word = (i / 5) | 0;
    words[word] = ((words[word] as number) << 6) | sextet;
  }
  words[4] = (words[4] as number) | TAKEN;
  return true;
}
