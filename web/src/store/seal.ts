// The store's cryptography, without I/O: the two wrapping keys, record ids (HMAC of the
// name), sealed names and values (AES-256-GCM, a random 96-bit nonce per seal, the context
// bound as associated data) and the key check. The IndexedDB layer (`store.ts`) only moves
// what this module produces. Layout of every sealed item: `nonce (12) || ciphertext || tag (16)`.

import { StoreCorrupt, StoreInvalidName, StoreUnavailable, StoreWrongKey } from "./errors.js";

/** The two keys of a store. Both non-extractable; neither ever leaves WebCrypto. */
export interface StoreKeys {
  /** AES-GCM, 256 bits, usages encrypt/decrypt: seals names and values. */
  readonly aead: CryptoKey;
  /** HMAC-SHA-256, 256 bits, usage sign: turns a record name into its id. */
  readonly mac: CryptoKey;
}

/** What proves that keys are the store's keys, kept beside the records (not secret). */
export interface KeyCheck {
  /** HMAC of a fixed label under the store's MAC key. */
  readonly tag: Uint8Array<ArrayBuffer>;
  /** A fixed label sealed under the store's AEAD key. */
  readonly box: Uint8Array<ArrayBuffer>;
}

/** Bytes of a nonce (AES-GCM's 96-bit IV). */
export const NONCE_BYTES = 12;
/** Bytes of the AES-GCM tag. */
export const TAG_BYTES = 16;
/** Longest record name accepted, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 1024;

const LABEL = "atmls-web-store v1";
const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/** Fresh random keys for a new store, generated with `extractable: false`. */
export async function generateStoreKeys(): Promise<StoreKeys> {
  try {
    const aead = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
    const mac = await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256", length: 256 }, false, ["sign"]);
    return { aead, mac };
  } catch (e) {
    throw new StoreUnavailable("WebCrypto could not generate the store keys", { cause: e });
  }
}

/**
 * Parses a value read from storage (or given by the application) into `StoreKeys`: two
 * `CryptoKey`s of the right algorithm, size and usage, both non-extractable. Anything else
 * is `StoreCorrupt` (an extractable key is refused: the store's promise depends on it).
 */
export function parseStoreKeys(value: unknown): StoreKeys {
  if (typeof value !== "object" || value === null) throw new StoreCorrupt("the key entry is not an object");
  const { aead, mac } = value as { aead?: unknown; mac?: unknown };
  if (!(aead instanceof CryptoKey) || !(mac instanceof CryptoKey)) {
    throw new StoreCorrupt("the key entry does not hold two CryptoKeys");
  }
  const aeadAlg = aead.algorithm as Partial<AesKeyAlgorithm>;
  const macAlg = mac.algorithm as Partial<HmacKeyAlgorithm>;
  const ok =
    aeadAlg.name === "AES-GCM" &&
    aeadAlg.length === 256 &&
    aead.usages.includes("encrypt") &&
    aead.usages.includes("decrypt") &&
    macAlg.name === "HMAC" &&
    macAlg.hash?.name === "SHA-256" &&
    macAlg.length === 256 &&
    mac.usages.includes("sign");
  if (!ok) throw new StoreCorrupt("the store keys have the wrong algorithm, size or usages");
  if (aead.extractable || mac.extractable) throw new StoreCorrupt("a store key is extractable");
  return { aead, mac };
}

/** The UTF-8 bytes of a record name, checked: non-empty, well-formed, at most `MAX_NAME_BYTES`. */
export function nameBytes(name: string): Uint8Array<ArrayBuffer> {
  const bytes = encoder.encode(name);
  if (bytes.length === 0) throw new StoreInvalidName("a record name is empty");
  if (bytes.length > MAX_NAME_BYTES) throw new StoreInvalidName(`a record name is longer than ${MAX_NAME_BYTES} bytes`);
  // TextEncoder replaces lone surrogates with U+FFFD: two different names would share an id.
  if (strictDecoder.decode(bytes) !== name) throw new StoreInvalidName("a record name is not well-formed Unicode");
  return bytes;
}

/** A record's id: lowercase hex of HMAC-SHA-256(mac key, label || 0x00 || UTF-8 name). */
export async function recordId(keys: StoreKeys, name: string): Promise<string> {
  const tag = await hmac(keys.mac, context("id", nameBytes(name)));
  return hex(tag);
}

/** Seals a record's value, bound to its name. */
export function sealValue(keys: StoreKeys, name: string, value: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  return seal(keys.aead, context("value", nameBytes(name)), value);
}

/** Opens a record's value sealed for `name`; anything that does not open is `StoreCorrupt`. */
export function openValue(keys: StoreKeys, name: string, sealed: unknown): Promise<Uint8Array<ArrayBuffer>> {
  return open(keys.aead, context("value", nameBytes(name)), sealed, "a record value");
}

/** Seals a record's name, bound to its id (so that listing can recover names). */
export function sealName(keys: StoreKeys, id: string, name: string): Promise<Uint8Array<ArrayBuffer>> {
  return seal(keys.aead, context("name", encoder.encode(id)), nameBytes(name));
}

/** Opens a sealed name stored under `id`, checking that the name really has that id. */
export async function openName(keys: StoreKeys, id: string, sealed: unknown): Promise<string> {
  const bytes = await open(keys.aead, context("name", encoder.encode(id)), sealed, "a record name");
  let name: string;
  try {
    name = strictDecoder.decode(bytes);
  } catch {
    throw new StoreCorrupt("a record name is not UTF-8");
  }
  if ((await recordId(keys, name)) !== id) throw new StoreCorrupt("a record name does not match its id");
  return name;
}

/** The key check written when a store is created. */
export async function makeKeyCheck(keys: StoreKeys): Promise<KeyCheck> {
  const label = encoder.encode(LABEL);
  return { tag: await hmac(keys.mac, context("check", label)), box: await seal(keys.aead, context("check", label), label) };
}

/** Parses a stored key check and verifies `keys` against it; other keys are `StoreWrongKey`. */
export async function verifyKeyCheck(keys: StoreKeys, stored: unknown): Promise<void> {
  if (typeof stored !== "object" || stored === null) throw new StoreCorrupt("the key check is not an object");
  const { tag, box } = stored as { tag?: unknown; box?: unknown };
  if (!(tag instanceof Uint8Array) || !(box instanceof Uint8Array)) throw new StoreCorrupt("the key check has the wrong shape");
  const label = encoder.encode(LABEL);
  const expected = await hmac(keys.mac, context("check", label));
  if (!equalBytes(expected, tag)) throw new StoreWrongKey("the MAC key is not the store's key");
  let opened: Uint8Array;
  try {
    opened = await open(keys.aead, context("check", label), box, "the key check");
  } catch {
    throw new StoreWrongKey("the encryption key is not the store's key");
  }
  if (!equalBytes(opened, label)) throw new StoreWrongKey("the encryption key is not the store's key");
}

// ---- internals ----

/** `LABEL " " purpose 0x00 data`: one domain per use of a key. */
function context(purpose: "id" | "value" | "name" | "check", data: Uint8Array): Uint8Array<ArrayBuffer> {
  const head = encoder.encode(`${LABEL} ${purpose}\0`);
  const out = new Uint8Array(head.length + data.length);
  out.set(head, 0);
  out.set(data, head.length);
  return out;
}

async function seal(key: CryptoKey, ad: Uint8Array<ArrayBuffer>, plaintext: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  let ct: ArrayBuffer;
  try {
    ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: ad }, key, new Uint8Array(plaintext));
  } catch (e) {
    throw new StoreUnavailable("WebCrypto could not encrypt", { cause: e });
  }
  const out = new Uint8Array(NONCE_BYTES + ct.byteLength);
  out.set(nonce, 0);
  out.set(new Uint8Array(ct), NONCE_BYTES);
  return out;
}

async function open(key: CryptoKey, ad: Uint8Array<ArrayBuffer>, sealed: unknown, what: string): Promise<Uint8Array<ArrayBuffer>> {
  if (!(sealed instanceof Uint8Array)) throw new StoreCorrupt(`${what} is not bytes`);
  if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new StoreCorrupt(`${what} is too short`);
  const nonce = sealed.slice(0, NONCE_BYTES);
  const ct = sealed.slice(NONCE_BYTES);
  try {
    return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce, additionalData: ad }, key, ct));
  } catch (e) {
    throw new StoreCorrupt(`${what} does not decrypt`, { cause: e });
  }
}

async function hmac(key: CryptoKey, data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  try {
    return new Uint8Array(await crypto.subtle.sign("HMAC", key, data));
  } catch (e) {
    throw new StoreUnavailable("WebCrypto could not compute an HMAC", { cause: e });
  }
}

function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}
