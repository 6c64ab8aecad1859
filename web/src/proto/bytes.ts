// Byte helpers shared by the protocol modules: concatenation, comparison, big-endian
// integers, and the text forms of bytes the spec uses (docs/spec.md §2): standard base64
// without padding, lowercase base32 without padding.

import { base32Decode, base32Encode, base64Decode, base64Encode, EncodingError } from "./encoding.js";

export { EncodingError };

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

/** Standard base64 (RFC 4648 §4) without padding. */
export function toBase64(bytes: Uint8Array): string {
  return base64Encode(bytes);
}

/** Bytes of standard base64; padding is accepted (spec §2: readers SHOULD), trailing bits must be zero. */
export function fromBase64(text: string): Uint8Array {
  return base64Decode(text);
}

/** Lowercase base32 (RFC 4648 §6 alphabet, lower case) without padding. */
export function toBase32(bytes: Uint8Array): string {
  return base32Encode(bytes);
}

/** Bytes of lowercase base32 without padding; trailing bits must be zero. */
export function fromBase32(text: string): Uint8Array {
  return base32Decode(text);
}

/** An MLS variable-length vector (RFC 9420 §2.1.2): the minimal varint length prefix, then the bytes. */
export function vl(data: Uint8Array): Uint8Array {
  const n = data.length;
  if (n < 1 << 6) return concat(Uint8Array.of(n), data);
  if (n < 1 << 14) return concat(uintBE(0x4000 | n, 2), data);
  if (n < 1 << 30) return concat(uintBE(0x80000000 + n, 4), data);
  throw new RangeError("an MLS vector is shorter than 2^30 bytes");
}
