// Mailbox-key request signing (docs/spec.md §9.4): the 120-byte token, its signing bytes,
// and the signed content of procedures, queries and subscriptions.
import { ed25519 } from "@noble/curves/ed25519.js";
import { base64UrlDecode, base64UrlEncode, concatBytes, EncodingError } from "./encoding.js";
import { mailboxIdBytes, type MailboxId } from "./mailbox-id.js";

/** The signing context, protocol version 1 (§9.4.2). */
export const REQUEST_CONTEXT = "chat.mls/ds/v1 request";
/** The HTTP authorization scheme of a mailbox token (§9.4.1). */
export const MAILBOX_SCHEME = "ChatMls-Mailbox";
/** Token length in bytes and in base64url characters. */
export const TOKEN_BYTES = 120;
export const TOKEN_CHARS = 160;

const te = new TextEncoder();

/** Thrown for a malformed request input or token. */
export class RequestSigningError extends Error {
  override readonly name = "RequestSigningError";
}

/** An Ed25519 mailbox key: a group's epoch key or an inbox's owner key (§9.3). */
export class MailboxKey {
  /** The 32-byte public key registered with the DS. */
  readonly publicKey: Uint8Array;
  readonly #seed: Uint8Array;

  private constructor(seed: Uint8Array) {
    this.#seed = seed.slice();
    this.publicKey = ed25519.getPublicKey(this.#seed);
  }

  /** A key from its 32-byte secret seed (RFC 8032). */
  static fromSeed(seed: Uint8Array): MailboxKey {
    if (seed.length !== 32) throw new RequestSigningError("mailbox key: the seed is not 32 bytes");
    return new MailboxKey(seed);
  }

  /** A fresh random key (an inbox owner key). */
  static generate(): MailboxKey {
    return new MailboxKey(crypto.getRandomValues(new Uint8Array(32)));
  }

  /** The seed, for the device's encrypted state. */
  exportSeed(): Uint8Array {
    return this.#seed.slice();
  }

  /** Pure Ed25519 signature over `message`. */
  sign(message: Uint8Array): Uint8Array {
    return ed25519.sign(message, this.#seed);
  }
}

/** SHA-256 through WebCrypto. */
export async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

function u64be(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) throw new RequestSigningError("timestamp: not a u64 in the safe range");
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(value));
  return out;
}

/** The signing bytes of §9.4.2. */
export function signingBytes(input: {
  method: string;
  mailbox: MailboxId;
  publicKey: Uint8Array;
  timestampMs: number;
  nonce: Uint8Array;
  contentSha256: Uint8Array;
}): Uint8Array {
  const method = te.encode(input.method);
  if (method.length === 0 || method.length > 255) throw new RequestSigningError("method: length not 1-255");
  if (input.publicKey.length !== 32) throw new RequestSigningError("key: not 32 bytes");
  if (input.nonce.length !== 16) throw new RequestSigningError("nonce: not 16 bytes");
  if (input.contentSha256.length !== 32) throw new RequestSigningError("content hash: not 32 bytes");
  return concatBytes(
    te.encode(REQUEST_CONTEXT),
    Uint8Array.of(0, method.length),
    method,
    mailboxIdBytes(input.mailbox),
    input.publicKey,
    u64be(input.timestampMs),
    input.nonce,
    input.contentSha256,
  );
}

/**
 * The signed content of a subscription (§9.4.2): the query string with every component that is
 * exactly `auth` or begins with `auth=` removed, the rest joined with `&` in order.
 */
export function subscriptionSignedContent(query: string): string {
  return query
    .split("&")
    .filter((c) => c !== "auth" && !c.startsWith("auth="))
    .join("&");
}

/** Everything a signed request produced; `token` and `authorization` are what goes on the wire. */
export interface SignedRequest {
  readonly contentSha256: Uint8Array;
  readonly signingBytes: Uint8Array;
  readonly signature: Uint8Array;
  /** 160 characters of base64url. */
  readonly token: string;
  /** `ChatMls-Mailbox <token>`, the `Authorization` header value. */
  readonly authorization: string;
}

/**
 * Signs one request. `content` is the exact body bytes (procedures), the exact query string
 * after `?` (queries), or {@link subscriptionSignedContent} of the query (subscriptions).
 * `timestampMs` and `nonce` default to the clock and 16 fresh random bytes.
 */
export async function signRequest(input: {
  key: MailboxKey;
  method: string;
  mailbox: MailboxId;
  content: Uint8Array | string;
  timestampMs?: number;
  nonce?: Uint8Array;
}): Promise<SignedRequest> {
  const content = typeof input.content === "string" ? te.encode(input.content) : input.content;
  const timestampMs = input.timestampMs ?? Date.now();
  const nonce = input.nonce ?? crypto.getRandomValues(new Uint8Array(16));
  const contentSha256 = await sha256(content);
  const bytes = signingBytes({
    method: input.method,
    mailbox: input.mailbox,
    publicKey: input.key.publicKey,
    timestampMs,
    nonce,
    contentSha256,
  });
  const signature = input.key.sign(bytes);
  const token = base64UrlEncode(concatBytes(input.key.publicKey, u64be(timestampMs), nonce, signature));
  return { contentSha256, signingBytes: bytes, signature, token, authorization: `${MAILBOX_SCHEME} ${token}` };
}

/** A token taken apart (§9.4.1). */
export interface RequestToken {
  readonly publicKey: Uint8Array;
  readonly timestampMs: number;
  readonly nonce: Uint8Array;
  readonly signature: Uint8Array;
}

/** Parses a token: 160 characters of unpadded base64url decoding to 120 bytes. */
export function parseToken(text: string): RequestToken {
  if (text.length !== TOKEN_CHARS) throw new RequestSigningError("token: not 160 characters");
  let raw: Uint8Array;
  try {
    raw = base64UrlDecode(text);
  } catch (e) {
    throw new RequestSigningError(`token: ${e instanceof EncodingError ? e.message : "malformed"}`);
  }
  const ts = new DataView(raw.buffer, raw.byteOffset + 32, 8).getBigUint64(0);
  if (ts > BigInt(Number.MAX_SAFE_INTEGER)) throw new RequestSigningError("token: timestamp out of range");
  return {
    publicKey: raw.slice(0, 32),
    timestampMs: Number(ts),
    nonce: raw.slice(40, 56),
    signature: raw.slice(56, 120),
  };
}

/** Verifies a token over its signing bytes, strictly (RFC 8032, no ZIP-215 leniency). */
export function verifyToken(token: RequestToken, signing: Uint8Array): boolean {
  try {
    return ed25519.verify(token.signature, signing, token.publicKey, { zip215: false });
  } catch {
    return false;
  }
}
