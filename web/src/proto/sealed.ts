// Sealed items of an inbox (docs/spec.md §11.4, §11.17): a kind byte, the HPKE
// encapsulation and ciphertext, then zero padding to the size bucket (§11.5):
//
//   kind (0x01 welcome, 0x02 re-entry) || u16 len(enc) || enc || u32 len(ct) || ct || zeros
//
// enc, ct = HPKE base mode SealBase(pkR = the recipient KeyPackage's init key, info,
// aad = "", plaintext) in the HPKE of that KeyPackage's MLS cipher suite.
import { Chacha20Poly1305 } from "@hpke/chacha20poly1305";
import { Aes128Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/core";
import { XWing } from "@hpke/hybridkem-x-wing";
import { concat, readUintBE, uintBE } from "./bytes.js";
import { PaddingError, unpad } from "./padding.js";

/** The first byte of a sealed welcome. */
export const SEALED_WELCOME = 0x01;
/** The first byte of a sealed re-entry request. */
export const SEALED_REENTRY = 0x02;
/** The kinds of sealed items. */
export type SealedKind = typeof SEALED_WELCOME | typeof SEALED_REENTRY;

/** MLS cipher suite 0x0001: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM. */
export const SUITE_X25519_AES128GCM = 0x0001;
/**
 * MLS cipher suite 0x004D as atmls uses it (§11.19): X-Wing (HPKE KEM 0x647A), HKDF-SHA256,
 * ChaCha20-Poly1305. ts-mls 1.6.4 has no MLS suite with this code point and these
 * algorithms (its 77 is ML-KEM-512), so a browser device only seals and opens with it.
 */
export const SUITE_XWING_CHACHA20 = 0x004d;

/** A sealed item that cannot be parsed or opened. */
export class SealedError extends Error {
  override readonly name = "SealedError";
}

/** A cipher suite whose HPKE this implementation does not have. */
export class UnsupportedSuiteError extends Error {
  override readonly name = "UnsupportedSuiteError";
  constructor(readonly suite: number) {
    super(`MLS cipher suite 0x${suite.toString(16).padStart(4, "0")} is not implemented here`);
  }
}

/** The HPKE of an MLS cipher suite (RFC 9420 §5.1). */
export function hpkeOf(suite: number): CipherSuite {
  if (suite === SUITE_X25519_AES128GCM) {
    return new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes128Gcm() });
  }
  if (suite === SUITE_XWING_CHACHA20) {
    return new CipherSuite({ kem: new XWing(), kdf: new HkdfSha256(), aead: new Chacha20Poly1305() });
  }
  throw new UnsupportedSuiteError(suite);
}

/** The parts of a sealed item. */
export interface SealedParts {
  readonly kind: SealedKind;
  readonly enc: Uint8Array;
  readonly ciphertext: Uint8Array;
}

/** The sealed layout (without padding) of its parts. */
export function encodeSealed(parts: SealedParts): Uint8Array {
  return concat(
    Uint8Array.of(parts.kind),
    uintBE(parts.enc.length, 2),
    parts.enc,
    uintBE(parts.ciphertext.length, 4),
    parts.ciphertext,
  );
}

/** Parses a padded sealed item; refuses an unknown kind, a short item, non-zero padding. */
export function parseSealed(payload: Uint8Array): SealedParts {
  const kind = payload[0];
  if (kind !== SEALED_WELCOME && kind !== SEALED_REENTRY) throw new SealedError("unknown sealed kind");
  if (payload.length < 7) throw new SealedError("the sealed item ends early");
  const n = readUintBE(payload.subarray(1, 3));
  if (payload.length < 7 + n) throw new SealedError("the sealed item ends early");
  const m = readUintBE(payload.subarray(3 + n, 7 + n));
  try {
    unpad(payload, 7 + n + m);
  } catch (e) {
    throw new SealedError(e instanceof PaddingError ? e.message : "bad padding");
  }
  return { kind, enc: payload.slice(3, 3 + n), ciphertext: payload.slice(7 + n, 7 + n + m) };
}

/**
 * Seals `plaintext` to a recipient's init key (raw public key bytes) in `suite`'s HPKE.
 * `ephemeralIkm` fixes the ephemeral key (DeriveKeyPair, RFC 9180 §7.1.3) for test vectors
 * only (suite 0x0001); leave it out to draw a fresh one.
 */
export async function seal(
  kind: SealedKind,
  suite: number,
  recipientPublicKey: Uint8Array,
  info: string,
  plaintext: Uint8Array,
  ephemeralIkm?: Uint8Array,
): Promise<Uint8Array> {
  const hpke = hpkeOf(suite);
  const recipient = await hpke.kem.deserializePublicKey(recipientPublicKey);
  const ekm = ephemeralIkm === undefined ? undefined : await hpke.kem.deriveKeyPair(ephemeralIkm);
  const sealed = await hpke.seal(
    { recipientPublicKey: recipient, info: new TextEncoder().encode(info), ...(ekm === undefined ? {} : { ekm }) },
    plaintext,
    new Uint8Array(0),
  );
  return encodeSealed({ kind, enc: new Uint8Array(sealed.enc), ciphertext: new Uint8Array(sealed.ct) });
}

/** One private init key the recipient may try: its suite and raw private key bytes. */
export interface InitKey {
  readonly suite: number;
  readonly privateKey: Uint8Array;
}

/**
 * Opens a padded sealed item of `kind` with the first of `keys` that opens it (a device
 * tries the init keys of its published KeyPackages); refuses it if none does.
 */
export async function open(kind: SealedKind, payload: Uint8Array, info: string, keys: readonly InitKey[]): Promise<Uint8Array> {
  const parts = parseSealed(payload);
  if (parts.kind !== kind) throw new SealedError("not the expected kind of sealed item");
  for (const key of keys) {
    let hpke: CipherSuite;
    try {
      hpke = hpkeOf(key.suite);
    } catch {
      continue;
    }
    try {
      const recipientKey = await hpke.kem.deserializePrivateKey(key.privateKey);
      const pt = await hpke.open(
        { recipientKey, enc: parts.enc, info: new TextEncoder().encode(info) },
        parts.ciphertext,
        new Uint8Array(0),
      );
      return new Uint8Array(pt);
    } catch {
      // Not this key: try the next one.
    }
  }
  throw new SealedError("no init key opens the sealed item");
}
