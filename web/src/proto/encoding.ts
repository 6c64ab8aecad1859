// Byte encodings used on the wire (docs/spec.md §2, §9.1, §9.4.1): lowercase base32
// without padding, base64 (standard and URL-safe) without padding, and hex. The one home of
// these codecs: proto/bytes.ts and net/ use them.

/** Thrown when a text is not the canonical encoding it claims to be. */
export class EncodingError extends Error {
  override readonly name = "EncodingError";
}

const B32 = "abcdefghijklmnopqrstuvwxyz234567";
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

function encodeBits(bytes: Uint8Array, alphabet: string, bits: number): string {
  let out = "";
  let acc = 0;
  let n = 0;
  const mask = (1 << bits) - 1;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    n += 8;
    while (n >= bits) {
      n -= bits;
      out += alphabet[(acc >> n) & mask];
    }
    acc &= (1 << n) - 1;
  }
  if (n > 0) out += alphabet[(acc << (bits - n)) & mask];
  return out;
}

/** Decodes strictly: every character in the alphabet, trailing bits zero, no impossible length. */
function decodeBits(text: string, alphabet: string, bits: number, what: string): Uint8Array {
  const out = new Uint8Array(Math.floor((text.length * bits) / 8));
  let acc = 0;
  let n = 0;
  let i = 0;
  for (const ch of text) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new EncodingError(`${what}: character outside the alphabet`);
    acc = (acc << bits) | v;
    n += bits;
    if (n >= 8) {
      n -= 8;
      out[i++] = (acc >> n) & 0xff;
    }
    acc &= (1 << n) - 1;
  }
  if (n >= bits) throw new EncodingError(`${what}: impossible length`);
  if (acc !== 0) throw new EncodingError(`${what}: non-zero trailing bits`);
  return out;
}

/** Lowercase RFC 4648 base32, no padding. */
export function base32Encode(bytes: Uint8Array): string {
  return encodeBits(bytes, B32, 5);
}

/** Strict inverse of {@link base32Encode}. */
export function base32Decode(text: string): Uint8Array {
  return decodeBits(text, B32, 5, "base32");
}

/** RFC 4648 §5 base64url, no padding. */
export function base64UrlEncode(bytes: Uint8Array): string {
  return encodeBits(bytes, B64URL, 6);
}

/** Strict inverse of {@link base64UrlEncode} (padding refused). */
export function base64UrlDecode(text: string): Uint8Array {
  return decodeBits(text, B64URL, 6, "base64url");
}

/** Standard base64 without padding, as the atproto JSON `{"$bytes": …}` form writes it (§2). */
export function base64Encode(bytes: Uint8Array): string {
  return encodeBits(bytes, B64, 6);
}

/** Standard base64; accepts trailing `=` padding as §2 says readers SHOULD. */
export function base64Decode(text: string): Uint8Array {
  const m = /^(.*?)(=*)$/s.exec(text);
  const body = m?.[1] ?? text;
  const pad = m?.[2] ?? "";
  if (pad.length > 0 && (pad.length > 2 || (body.length + pad.length) % 4 !== 0)) {
    throw new EncodingError("base64: bad padding");
  }
  return decodeBits(body, B64, 6, "base64");
}

/** Lowercase hex. */
export function hexEncode(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** Strict lowercase-or-uppercase hex of even length. */
export function hexDecode(text: string): Uint8Array {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) throw new EncodingError("hex: malformed");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Byte-wise equality. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Concatenates byte arrays. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** UTF-8 bytes of a string. */
export function utf8Bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}
