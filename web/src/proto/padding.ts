// Size buckets v1 (docs/spec.md §11.5): every payload sent to the DS is the encoded object
// followed by zero bytes up to its bucket, capped at the DS's `maxEnvelopeBytes`.
// Not ts-mls's own padding: ts-mls pads PrivateMessage content (to 256 or a fixed size);
// these buckets apply outside MLS, to the whole MLSMessage or sealed item.

/** A payload whose padding is not all zeros, or shorter than the object it holds. */
export class PaddingError extends Error {
  override readonly name = "PaddingError";
}

const BUCKET_LINEAR = 65536;

/**
 * The v1 bucket of an object of `length` bytes: 256 up to 256, the next power of two up to
 * 65536, then the next multiple of 65536.
 */
export function bucket(length: number): number {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`not a length: ${length}`);
  if (length <= 256) return 256;
  if (length <= BUCKET_LINEAR) {
    let size = 512;
    while (size < length) size *= 2;
    return size;
  }
  return Math.ceil(length / BUCKET_LINEAR) * BUCKET_LINEAR;
}

/**
 * The length a payload of an object of `length` bytes is sent with: its bucket, capped at
 * `maxEnvelopeBytes` when given, but never shorter than the object (a larger object is sent
 * unpadded).
 */
export function paddedLength(length: number, maxEnvelopeBytes?: number): number {
  const b = bucket(length);
  const capped = maxEnvelopeBytes === undefined ? b : Math.min(b, maxEnvelopeBytes);
  return Math.max(capped, length);
}

/** The object followed by zero bytes up to `paddedLength(object.length, maxEnvelopeBytes)`. */
export function pad(object: Uint8Array, maxEnvelopeBytes?: number): Uint8Array {
  const out = new Uint8Array(paddedLength(object.length, maxEnvelopeBytes));
  out.set(object);
  return out;
}

/**
 * The first `objectLength` bytes of `payload` (the reader has parsed the object and knows
 * its length); refuses a payload whose remainder is not all zeros.
 */
export function unpad(payload: Uint8Array, objectLength: number): Uint8Array {
  if (!Number.isSafeInteger(objectLength) || objectLength < 0 || objectLength > payload.length) {
    throw new PaddingError("the payload is shorter than the object it holds");
  }
  for (let i = objectLength; i < payload.length; i++) {
    if (payload[i] !== 0) throw new PaddingError("the padding is not all zeros");
  }
  return payload.subarray(0, objectLength);
}
