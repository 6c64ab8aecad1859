// Byte helpers shared by the protocol modules: concatenation, comparison, big-endian
// integers, and the text forms of bytes the spec uses (docs/spec.md §2): standard base64
// without padding, lowercase base32 without padding.

import { concatBytes as concat } from "./encoding.js";

// One implementation of each helper, in encoding.ts; these are the names the protocol
// modules use.
export {
  EncodingError,
  concatBytes as concat,
  bytesEqual as equal,
  utf8Bytes as utf8,
  base64Encode as toBase64,
  base64Decode as fromBase64,
  base32Encode as toBase32,
  base32Decode as fromBase32,
} from "./encoding.js";

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


/** An MLS variable-length vector (RFC 9420 §2.1.2): the minimal varint length prefix, then the bytes. */
export function vl(data: Uint8Array): Uint8Array {
  const n = data.length;
  if (n < 1 << 6) return concat(Uint8Array.of(n), data);
  if (n < 1 << 14) return concat(uintBE(0x4000 | n, 2), data);
  if (n < 1 << 30) return concat(uintBE(0x80000000 + n, 4), data);
  throw new RangeError("an MLS vector is shorter than 2^30 bytes");
}
