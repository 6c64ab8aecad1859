// TLS presentation-language pieces used by atmls's own MLS extensions and proposals
// (docs/spec.md §11.2, §11.13, §11.16): the RFC 9420 §2.1.2 variable-length vector
// `<V>` (a minimal 1-, 2- or 4-byte varint length) and a bounded reader over peer bytes.

/** Bytes that do not parse as the structure they claim to be. */
export class DecodeError extends Error {
  override readonly name = "DecodeError";
}

/** The largest length a `<V>` varint can carry (RFC 9420 §2.1.2: 30 bits). */
const MAX_VARINT = 0x3fffffff;

/** Appends `n` as an RFC 9420 varint, minimally encoded. */
export function putVarint(out: number[], n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > MAX_VARINT) throw new RangeError(`varint out of range: ${n}`);
  if (n < 0x40) out.push(n);
  else if (n < 0x4000) out.push(0x40 | (n >> 8), n & 0xff);
  else out.push(0x80 | (n >>> 24), (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
}

/** Appends `bytes` as an opaque `<V>` vector. */
export function putVector(out: number[], bytes: Uint8Array): void {
  putVarint(out, bytes.length);
  for (const b of bytes) out.push(b);
}

/** Appends a big-endian unsigned integer of `size` bytes. */
export function putUint(out: number[], n: number, size: 1 | 2 | 4): void {
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** (8 * size)) throw new RangeError(`uint${8 * size} out of range: ${n}`);
  for (let i = size - 1; i >= 0; i--) out.push(Math.floor(n / 2 ** (8 * i)) & 0xff);
}

/** `value` as a `<V>` vector on its own (e.g. an `application_id` extension's data). */
export function vector(value: Uint8Array): Uint8Array {
  const out: number[] = [];
  putVector(out, value);
  return Uint8Array.from(out);
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export { utf8Bytes, bytesEqual, hexEncode as toHex } from "../proto/encoding.js";

/** A cursor over peer bytes; every read is bounded and fails with a DecodeError. */
export class Reader {
  private offset = 0;

  constructor(private readonly bytes: Uint8Array) {}

  /** One unsigned integer of `size` bytes, big-endian. */
  uint(size: 1 | 2 | 4, what: string): number {
    const end = this.offset + size;
    if (end > this.bytes.length) throw new DecodeError(`${what}: truncated`);
    let n = 0;
    for (let i = this.offset; i < end; i++) n = n * 256 + (this.bytes[i] ?? 0);
    this.offset = end;
    return n;
  }

  /** Exactly `length` bytes. */
  fixed(length: number, what: string): Uint8Array {
    const end = this.offset + length;
    if (end > this.bytes.length) throw new DecodeError(`${what}: truncated`);
    const out = this.bytes.slice(this.offset, end);
    this.offset = end;
    return out;
  }

  /** A `<V>` vector of at most `max` bytes; refuses a non-minimal or reserved varint. */
  vector(max: number, what: string): Uint8Array {
    const first = this.uint(1, `${what} length`);
    const prefix = first >> 6;
    let length: number;
    if (prefix === 0) length = first;
    else if (prefix === 1) {
      length = ((first & 0x3f) << 8) | this.uint(1, `${what} length`);
      if (length < 0x40) throw new DecodeError(`${what}: non-minimal length`);
    } else if (prefix === 2) {
      length = (first & 0x3f) * 0x1000000 + this.uint(1, `${what} length`) * 0x10000 + this.uint(2, `${what} length`);
      if (length < 0x4000) throw new DecodeError(`${what}: non-minimal length`);
    } else throw new DecodeError(`${what}: reserved varint prefix`);
    if (length > max) throw new DecodeError(`${what}: ${length} bytes, at most ${max}`);
    return this.fixed(length, what);
  }

  /** A `<V>` vector holding UTF-8 text of at most `max` bytes. */
  text(max: number, what: string): string {
    const bytes = this.vector(max, what);
    try {
      return strictUtf8.decode(bytes);
    } catch {
      throw new DecodeError(`${what}: not UTF-8`);
    }
  }

  /** Whether every byte was read. */
  get atEnd(): boolean {
    return this.offset === this.bytes.length;
  }

  /** Refuses bytes left over after the structure. */
  end(what: string): void {
    if (!this.atEnd) throw new DecodeError(`${what}: ${this.bytes.length - this.offset} trailing bytes`);
  }
}

