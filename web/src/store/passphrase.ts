// Store keys from a passphrase, never stored (decision 0028, "key sources"): PBKDF2-HMAC-
// SHA-256 over the passphrase and a random salt gives 32 bytes, HKDF-SHA-256 turns them into
// the AES-GCM and HMAC keys, both non-extractable. Salt and iteration count are not secret
// and are kept in the store (`meta["kdf"]`). All of it is WebCrypto: no dependency.

import { StoreCorrupt, StorePassphraseRequired, StoreUnavailable } from "./errors.js";
import type { StoreKeys } from "./seal.js";

/** The stored, non-secret parameters of a passphrase store. */
export interface KdfParams {
  /** Version of this layout. */
  readonly version: 1;
  /** The key derivation function. */
  readonly kdf: "pbkdf2-sha256";
  /** PBKDF2 iterations. */
  readonly iterations: number;
  /** 16 random bytes. */
  readonly salt: Uint8Array<ArrayBuffer>;
}

/** Default PBKDF2-HMAC-SHA-256 iterations (OWASP's 2023 figure for this function). */
export const DEFAULT_PBKDF2_ITERATIONS = 600_000;
/** Iterations for tests only: asked for by name, never a default. */
export const INSECURE_PBKDF2_ITERATIONS_FOR_TESTS = 1_000;
/** More iterations than this in a stored `kdf` entry is refused (a tampered entry must not hang the page). */
export const MAX_PBKDF2_ITERATIONS = 10_000_000;
/** Salt length in bytes. */
export const SALT_BYTES = 16;

const encoder = new TextEncoder();

/** Fresh parameters for a new store: a random salt and `iterations`. */
export function newKdfParams(iterations: number = DEFAULT_PBKDF2_ITERATIONS): KdfParams {
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > MAX_PBKDF2_ITERATIONS) {
    throw new RangeError(`PBKDF2 iterations must be 1..${MAX_PBKDF2_ITERATIONS}`);
  }
  return { version: 1, kdf: "pbkdf2-sha256", iterations, salt: crypto.getRandomValues(new Uint8Array(SALT_BYTES)) };
}

/** Parses a stored `kdf` entry; anything else, or out of bounds, is `StoreCorrupt`. */
export function parseKdfParams(value: unknown): KdfParams {
  if (typeof value !== "object" || value === null) throw new StoreCorrupt("the kdf entry is not an object");
  const { version, kdf, iterations, salt } = value as Record<string, unknown>;
  if (version !== 1 || kdf !== "pbkdf2-sha256") throw new StoreCorrupt("the kdf entry names an unknown version or function");
  if (typeof iterations !== "number" || !Number.isSafeInteger(iterations) || iterations < 1 || iterations > MAX_PBKDF2_ITERATIONS) {
    throw new StoreCorrupt("the kdf entry's iteration count is out of bounds");
  }
  if (!(salt instanceof Uint8Array) || salt.length !== SALT_BYTES) throw new StoreCorrupt("the kdf entry's salt is not 16 bytes");
  return { version, kdf, iterations, salt: new Uint8Array(salt) };
}

/**
 * The store keys of `passphrase` under `params`:
 * `ikm = PBKDF2-HMAC-SHA-256(UTF-8(passphrase), salt, iterations, 32 bytes)`,
 * `aead = HKDF-SHA-256(ikm, salt = "", info = "atmls-web-store v1 aead")` (AES-GCM 256),
 * `mac = HKDF-SHA-256(ikm, salt = "", info = "atmls-web-store v1 mac")` (HMAC-SHA-256, 256 bits).
 * The passphrase is taken as given (no Unicode normalization).
 */
export async function passphraseKeys(passphrase: string, params: KdfParams): Promise<StoreKeys> {
  if (passphrase.length === 0) throw new StorePassphraseRequired("the passphrase is empty");
  try {
    const base = await crypto.subtle.importKey("raw", encoder.encode(passphrase), "PBKDF2", false, ["deriveBits"]);
    const ikm = new Uint8Array(
      await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: params.salt, iterations: params.iterations }, base, 256),
    );
    const hkdf = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveKey"]);
    ikm.fill(0);
    const info = (what: string) => ({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: encoder.encode(`atmls-web-store v1 ${what}`) });
    const aead = await crypto.subtle.deriveKey(info("aead"), hkdf, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
    const mac = await crypto.subtle.deriveKey(info("mac"), hkdf, { name: "HMAC", hash: "SHA-256", length: 256 }, false, ["sign"]);
    return { aead, mac };
  } catch (e) {
    throw new StoreUnavailable("WebCrypto could not derive the store keys", { cause: e });
  }
}
