// Encrypted blobs (docs/spec.md §11.7, and out-of-band ratchet trees, §11.4): the plaintext
// is padded with zeros to its size bucket (§11.5, uncapped) and encrypted with AES-256-GCM
// (no associated data); `digest` is SHA-256 of the ciphertext, the blob's CID its CIDv1 raw.
import type { CID } from "multiformats/cid";
import { equal } from "./bytes.js";
import { RAW, cidOf, sha256 } from "./data-model.js";
import { PaddingError, bucket, unpad } from "./padding.js";

/** The only `cipher` value defined: AES-256-GCM with a 32-byte key. */
export const CIPHER = "aes-256-gcm";
const TAG_BYTES = 16;

/** An encrypted blob and what a reader needs to check it. */
export interface SealedBlob {
  readonly ciphertext: Uint8Array;
  /** SHA-256 of `ciphertext`. */
  readonly digest: Uint8Array;
  /** CIDv1 (raw, SHA-256) of `ciphertext`: the blob's CID on the PDS. */
  readonly cid: CID;
  /** Length of the plaintext. */
  readonly size: number;
}

/** A blob refused by its reader: wrong length or digest, no decryption, non-zero padding. */
export class BlobError extends Error {
  override readonly name = "BlobError";
}

function aesKey(key: Uint8Array, use: KeyUsage): Promise<CryptoKey> {
  if (key.length !== 32) throw new BlobError("an aes-256-gcm key is 32 bytes");
  return crypto.subtle.importKey("raw", key as Uint8Array<ArrayBuffer>, "AES-GCM", false, [use]);
}

/** Pads `plaintext` to its bucket and encrypts it under `key` (32 bytes) and `nonce` (fresh per key). */
export async function sealBlob(plaintext: Uint8Array, key: Uint8Array, nonce: Uint8Array): Promise<SealedBlob> {
  const padded = new Uint8Array(bucket(plaintext.length));
  padded.set(plaintext);
  const ciphertext = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce as Uint8Array<ArrayBuffer> }, await aesKey(key, "encrypt"), padded),
  );
  return { ciphertext, digest: await sha256(ciphertext), cid: await cidOf(RAW, ciphertext), size: plaintext.length };
}

/** What a reader knows of a blob before fetching it (from the content object or welcome). */
export interface BlobRef {
  readonly key: Uint8Array;
  readonly nonce: Uint8Array;
  readonly digest: Uint8Array;
  readonly size: number;
}

/**
 * Checks and opens a fetched blob: its length must be `bucket(size) + 16`, its SHA-256
 * `digest`; it must decrypt and its padding after `size` bytes be zeros.
 */
export async function openBlob(ciphertext: Uint8Array, ref: BlobRef): Promise<Uint8Array> {
  if (ciphertext.length !== bucket(ref.size) + TAG_BYTES) throw new BlobError("the blob's length does not match its size");
  if (!equal(await sha256(ciphertext), ref.digest)) throw new BlobError("the blob's digest does not match");
  let padded: Uint8Array;
  try {
    padded = new Uint8Array(
      await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: ref.nonce as Uint8Array<ArrayBuffer> },
        await aesKey(ref.key, "decrypt"),
        ciphertext as Uint8Array<ArrayBuffer>,
      ),
    );
  } catch {
    throw new BlobError("the blob does not decrypt");
  }
  try {
    return unpad(padded, ref.size);
  } catch (e) {
    throw e instanceof PaddingError ? new BlobError(e.message) : e;
  }
}
