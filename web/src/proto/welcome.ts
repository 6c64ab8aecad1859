// Sealed welcomes (docs/spec.md §11.4): the plaintext map that tells a joiner where the
// group lives and carries the MLS Welcome (and, when the tree does not fit, where the
// encrypted ratchet tree is), sealed with HPKE to the KeyPackage's init key.
import { CID, DataModelError, type Ipld, decodeDagCbor, encodeDagCbor, parseCid } from "./data-model.js";
import { type MailboxId, MailboxIdError, parseMailboxId } from "./mailbox-id.js";
import { type InitKey, SEALED_WELCOME, SealedError, open, seal } from "./sealed.js";

/** The HPKE `info` of sealed welcomes. */
export const WELCOME_INFO = "chat.mls welcome v1";
/** The `version` of the welcome plaintext. */
export const WELCOME_VERSION = 1;

/** Where the out-of-band ratchet tree is and how to open it (an encrypted blob, §11.7). */
export interface RatchetTreeRef {
  /** The blob's CID (CIDv1 raw, base32 text). */
  readonly cid: string;
  /** The committer's DID, whose PDS holds the blob. */
  readonly did: string;
  readonly key: Uint8Array;
  readonly nonce: Uint8Array;
  readonly digest: Uint8Array;
  /** The length of the TLS-encoded tree. */
  readonly size: number;
}

/** The welcome plaintext. */
export interface WelcomePlaintext {
  /** The group's DS (DID). */
  readonly ds: string;
  /** The first seq of the group mailbox to read: the commit's seq + 1. */
  readonly fromSeq: number;
  readonly mailbox: MailboxId;
  /** The TLS-encoded MLSMessage (welcome). */
  readonly welcome: Uint8Array;
  readonly ratchetTree?: RatchetTreeRef;
}

/** A welcome plaintext that is not exactly the map of §11.4. */
export class WelcomeError extends Error {
  override readonly name = "WelcomeError";
}

/** The canonical DAG-CBOR of the plaintext map (with `version: 1`). */
export function encodeWelcomePlaintext(p: WelcomePlaintext): Uint8Array {
  const map: { [key: string]: Ipld } = {
    ds: p.ds,
    fromSeq: p.fromSeq,
    mailbox: p.mailbox,
    version: WELCOME_VERSION,
    welcome: p.welcome,
  };
  if (p.ratchetTree !== undefined) {
    const t = p.ratchetTree;
    map["ratchetTree"] = { cid: t.cid, did: t.did, key: t.key, size: t.size, nonce: t.nonce, digest: t.digest };
  }
  return encodeDagCbor(map);
}

function exactKeys(what: string, value: Ipld, required: readonly string[], optional: readonly string[] = []): Record<string, Ipld> {
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array || CID.asCID(value) !== null) {
    throw new WelcomeError(`${what} is not a map`);
  }
  const map = value as Record<string, Ipld>;
  for (const k of required) if (!(k in map)) throw new WelcomeError(`${what} lacks ${k}`);
  for (const k of Object.keys(map)) {
    if (!required.includes(k) && !optional.includes(k)) throw new WelcomeError(`${what} has an unknown key ${k}`);
  }
  return map;
}

function text(what: string, v: Ipld | undefined): string {
  if (typeof v !== "string") throw new WelcomeError(`${what} is not a string`);
  return v;
}

function bytesOf(what: string, v: Ipld | undefined, length?: number): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new WelcomeError(`${what} is not bytes`);
  if (length !== undefined && v.length !== length) throw new WelcomeError(`${what} is not ${length} bytes`);
  return v;
}

function count(what: string, v: Ipld | undefined): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new WelcomeError(`${what} is not an unsigned integer`);
  return v;
}

/** Parses an opened plaintext: canonical DAG-CBOR of exactly the map of §11.4, version 1. */
export function decodeWelcomePlaintext(bytes: Uint8Array): WelcomePlaintext {
  let value: Ipld;
  try {
    value = decodeDagCbor(bytes);
  } catch (e) {
    throw new WelcomeError(e instanceof DataModelError ? e.message : "not DAG-CBOR");
  }
  const m = exactKeys("the welcome", value, ["ds", "fromSeq", "mailbox", "version", "welcome"], ["ratchetTree"]);
  if (m["version"] !== WELCOME_VERSION) throw new WelcomeError("unknown welcome version");
  let mailbox: MailboxId;
  try {
    mailbox = parseMailboxId(text("mailbox", m["mailbox"]));
  } catch (e) {
    throw new WelcomeError(e instanceof MailboxIdError ? e.message : "bad mailbox");
  }
  const fromSeq = count("fromSeq", m["fromSeq"]);
  if (fromSeq < 1) throw new WelcomeError("fromSeq starts at 1");
  const out = { ds: text("ds", m["ds"]), fromSeq, mailbox, welcome: bytesOf("welcome", m["welcome"]) };
  const tree = m["ratchetTree"];
  if (tree === undefined) return out;
  const t = exactKeys("ratchetTree", tree, ["cid", "did", "key", "size", "nonce", "digest"]);
  const cid = text("ratchetTree.cid", t["cid"]);
  try {
    if (parseCid(cid).code !== 0x55) throw new WelcomeError("ratchetTree.cid is not a raw CID");
  } catch (e) {
    throw e instanceof WelcomeError ? e : new WelcomeError(`ratchetTree.cid: ${(e as Error).message}`);
  }
  return {
    ...out,
    ratchetTree: {
      cid,
      did: text("ratchetTree.did", t["did"]),
      key: bytesOf("ratchetTree.key", t["key"], 32),
      nonce: bytesOf("ratchetTree.nonce", t["nonce"], 12),
      digest: bytesOf("ratchetTree.digest", t["digest"], 32),
      size: count("ratchetTree.size", t["size"]),
    },
  };
}

/**
 * The bound of §11.4 on a sealed welcome's length, known before the commit is sent (so
 * before `fromSeq`): len(plaintext with fromSeq = 2^64 - 1) + 156 (7 bytes of layout, 133
 * for the largest DHKEM output (P-521), 16 for the AEAD tag). The committer sends the ratchet
 * tree inline when this is ≤ `maxEnvelopeBytes`. It bounds suite 0x0001 (32-byte `enc`), the
 * only suite a browser device's groups have; it does not bound X-Wing's 1,120-byte `enc`.
 */
export function sealedWelcomeLengthBound(p: WelcomePlaintext): number {
  // fromSeq 0 takes one CBOR byte, 2^64 - 1 takes nine (0x1b and eight bytes).
  return encodeWelcomePlaintext({ ...p, fromSeq: 0 }).length - 1 + 9 + 7 + 133 + 16;
}

/**
 * Seals a welcome to a KeyPackage's init key (raw public key) in its cipher suite; the
 * result is the sealed layout before padding (pad with `pad(…, maxEnvelopeBytes)`).
 * `ephemeralIkm` is for test vectors only.
 */
export async function sealWelcome(
  p: WelcomePlaintext,
  suite: number,
  initKey: Uint8Array,
  ephemeralIkm?: Uint8Array,
): Promise<Uint8Array> {
  return seal(SEALED_WELCOME, suite, initKey, WELCOME_INFO, encodeWelcomePlaintext(p), ephemeralIkm);
}

/** Opens a padded sealed welcome with the first init key that opens it, and parses it. */
export async function openWelcome(payload: Uint8Array, keys: readonly InitKey[]): Promise<WelcomePlaintext> {
  try {
    return decodeWelcomePlaintext(await open(SEALED_WELCOME, payload, WELCOME_INFO, keys));
  } catch (e) {
    if (e instanceof SealedError) throw new WelcomeError(e.message);
    throw e;
  }
}
