// Byte helpers shared by the protocol modules: concatenation, comparison, big-endian
// integers, and the text forms of bytes the spec uses (docs/spec.md §2): standard base64
// without padding, lowercase base32 without padding.

/** Text that is not the encoding it claims to be. */
export class EncodingError extends Error {
  override readonly name = "EncodingError";
}

/** The bytes of all parts, in order. */
export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Whether two byte strings are equal (not constant time). */
export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** `n` as `width` big-endian bytes (width ≤ 6, n a non-negative safe integer that fits). */
export function uintBE(n: number, width: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0 || n >= 2 ** (8 * width)) throw new RangeError(`${n} does not fit ${width} bytes`);
  const out = new Uint8Array(width);
  for (let i = width - 1, v = n; i >= 0; i--, v = Math.floor(v / 256)) out[i] = v % 256;
  return out;
}

/** The big-endian unsigned integer of `bytes` (at most 6 bytes). */
export function readUintBE(bytes: Uint8Array): number {
  let n = 0;
  for (const b of bytes) n = n * 256 + b;
  return n;
}

/** UTF-8 bytes of a string. */
export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B32 = "abcdefghijklmnopqrstuvwxyz234567";

function encodeBits(bytes: Uint8Array, alphabet: string, bits: number): string {
  let out = "";
  let acc = 0;
  let n = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    n += 8;
    while (n >= bits) {
      n -= bits;
      out += alphabet.charAt((acc >> n) & ((1 << bits) - 1));
    }
    acc &= (1 << n) - 1;
  }
  if (n > 0) out += alphabet.charAt((acc << (bits - n)) & ((1 << bits) - 1));
  return out;
}

function decodeBits(text: string, alphabet: string, bits: number, what: string): Uint8Array {
  const out = new Uint8Array(Math.floor((text.length * bits) / 8));
  let acc = 0;
  let n = 0;
  let at = 0;
  for (const c of text) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new EncodingError(`not ${what}: character ${JSON.stringify(c)}`);
    acc = (acc << bits) | v;
    n += bits;
    if (n >= 8) {
      n -= 8;
      out[at++] = (acc >> n) & 0xff;
    }
    acc &= (1 << n) - 1;
  }
  // Leftover bits must be zero (one text form per byte string) and fewer than a character.
  if (acc !== 0 || n >= bits) throw new EncodingError(`not canonical ${what}`);
  return out;
}

/** Standard base64 (RFC 4648 §4) without padding. */
export function toBase64(bytes: Uint8Array): string {
  return encodeBits(bytes, B64, 6);
}

/** Bytes of standard base64; padding is accepted (spec §2: readers SHOULD), trailing bits must be zero. */
export function fromBase64(text: string): Uint8Array {
  const bare = text.endsWith("==") ? text.slice(0, -2) : text.endsWith("=") ? text.slice(0, -1) : text;
  if (bare !== text && text.length % 4 !== 0) throw new EncodingError("not base64: bad padding");
  return decodeBits(bare, B64, 6, "base64");
}

/** Lowercase base32 (RFC 4648 §6 alphabet, lower case) without padding. */
export function toBase32(bytes: Uint8Array): string {
  return encodeBits(bytes, B32, 5);
}

/** Bytes of lowercase base32 without padding; trailing bits must be zero. */
export function fromBase32(text: string): Uint8Array {
  return decodeBits(text, B32, 5, "lowercase base32");
}

/** An MLS variable-length vector (RFC 9420 §2.1.2): the minimal varint length prefix, then the bytes. */
export function vl(data: Uint8Array): Uint8Array {
  const n = data.length;
  if (n < 1 << 6) return concat(Uint8Array.of(n), data);
  if (n < 1 << 14) return concat(uintBE(0x4000 | n, 2), data);
  if (n < 1 << 30) return concat(uintBE(0x80000000 + n, 4), data);
  throw new RangeError("an MLS vector is shorter than 2^30 bytes");
}
