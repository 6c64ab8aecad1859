// Re-entry requests (docs/spec.md §11.17): a broken device asks a member to re-add it with a
// request sealed like a welcome (first byte 0x02, HPKE info "chat.mls reentry v1"), signed
// with the leaf signature key of the KeyPackage it names.
import { ed25519 } from "@noble/curves/ed25519.js";
import { concat, utf8 } from "./bytes.js";
import { CID, DataModelError, type Ipld, decodeDagCbor, encodeDagCbor } from "./data-model.js";
import { type MailboxId, MailboxIdError, parseMailboxId } from "./mailbox-id.js";
import { type InitKey, SEALED_REENTRY, SealedError, open, seal } from "./sealed.js";

/** The HPKE `info` of sealed re-entry requests. */
export const REENTRY_INFO = "chat.mls reentry v1";
/** The bytes signed are this context followed by the DAG-CBOR of the map without `sig`. */
export const REENTRY_SIGNATURE_CONTEXT = "chat.mls reentry signature v1";
/** The `version` of the request. */
export const REENTRY_VERSION = 1;

/** The group a request names (absent in a group-less request). */
export interface ReentryGroup {
  readonly ds: string;
  /** The MLS group id. */
  readonly id: Uint8Array;
  readonly mailbox: MailboxId;
}

/** A request before signing. */
export interface ReentryBody {
  readonly did: string;
  readonly deviceId: string;
  /** Unix milliseconds, informative. */
  readonly createdAt: number;
  /** The record key of the requester's chat.mls.keyPackage record. */
  readonly keyPackage: string;
  /** That KeyPackage's reference. */
  readonly keyPackageRef: Uint8Array;
  readonly group?: ReentryGroup;
}

/** A signed request. */
export interface ReentryRequest extends ReentryBody {
  readonly sig: Uint8Array;
}

/** A request that is not exactly the map of §11.17, or whose signature does not verify. */
export class ReentryError extends Error {
  override readonly name = "ReentryError";
}

function bodyMap(b: ReentryBody): { [key: string]: Ipld } {
  return {
    did: b.did,
    deviceId: b.deviceId,
    createdAt: b.createdAt,
    keyPackage: b.keyPackage,
    keyPackageRef: b.keyPackageRef,
    version: REENTRY_VERSION,
    ...(b.group === undefined ? {} : { group: { ds: b.group.ds, id: b.group.id, mailbox: b.group.mailbox } }),
  };
}

/** The bytes the requester signs: the context string || DAG-CBOR of the map without `sig`. */
export function reentrySignedBytes(body: ReentryBody): Uint8Array {
  return concat(utf8(REENTRY_SIGNATURE_CONTEXT), encodeDagCbor(bodyMap(body)));
}

/** Signs a request with the Ed25519 seed of the named KeyPackage's leaf signature key. */
export function signReentry(body: ReentryBody, leafSignatureSeed: Uint8Array): ReentryRequest {
  const sig = ed25519.sign(reentrySignedBytes(body), leafSignatureSeed);
  return { ...body, sig };
}

/** Whether the request's signature verifies under the named KeyPackage's leaf signature key. */
export function verifyReentry(request: ReentryRequest, leafSignatureKey: Uint8Array): boolean {
  try {
    return ed25519.verify(request.sig, reentrySignedBytes(request), leafSignatureKey);
  } catch {
    return false;
  }
}

/** The plaintext: the body map with `sig`, canonical DAG-CBOR. */
export function encodeReentryPlaintext(request: ReentryRequest): Uint8Array {
  return encodeDagCbor({ ...bodyMap(request), sig: request.sig });
}

function mapOf(what: string, v: Ipld | undefined, keys: readonly string[], optional: readonly string[] = []): Record<string, Ipld> {
  if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Uint8Array || CID.asCID(v) !== null) {
    throw new ReentryError(`${what} is not a map`);
  }
  const m = v as Record<string, Ipld>;
  for (const k of keys) if (!(k in m)) throw new ReentryError(`${what} lacks ${k}`);
  for (const k of Object.keys(m)) if (!keys.includes(k) && !optional.includes(k)) throw new ReentryError(`${what} has an unknown key ${k}`);
  return m;
}

function text(what: string, v: Ipld | undefined): string {
  if (typeof v !== "string") throw new ReentryError(`${what} is not a string`);
  return v;
}

function bytesOf(what: string, v: Ipld | undefined): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new ReentryError(`${what} is not bytes`);
  return v;
}

/** Parses an opened plaintext: exactly the map of §11.17, version 1 (the signature is not checked here). */
export function decodeReentryPlaintext(bytes: Uint8Array): ReentryRequest {
  let value: Ipld;
  try {
    value = decodeDagCbor(bytes);
  } catch (e) {
    throw new ReentryError(e instanceof DataModelError ? e.message : "not DAG-CBOR");
  }
  const m = mapOf("the request", value, ["did", "sig", "version", "deviceId", "createdAt", "keyPackage", "keyPackageRef"], ["group"]);
  if (m["version"] !== REENTRY_VERSION) throw new ReentryError("unknown request version");
  const createdAt = m["createdAt"];
  if (typeof createdAt !== "number" || !Number.isSafeInteger(createdAt)) throw new ReentryError("createdAt is not an integer");
  let group: ReentryGroup | undefined;
  if (m["group"] !== undefined) {
    const g = mapOf("group", m["group"], ["ds", "id", "mailbox"]);
    try {
      group = { ds: text("group.ds", g["ds"]), id: bytesOf("group.id", g["id"]), mailbox: parseMailboxId(text("group.mailbox", g["mailbox"])) };
    } catch (e) {
      throw e instanceof MailboxIdError ? new ReentryError(`group.mailbox: ${e.message}`) : e;
    }
  }
  return {
    did: text("did", m["did"]),
    deviceId: text("deviceId", m["deviceId"]),
    createdAt,
    keyPackage: text("keyPackage", m["keyPackage"]),
    keyPackageRef: bytesOf("keyPackageRef", m["keyPackageRef"]),
    sig: bytesOf("sig", m["sig"]),
    ...(group === undefined ? {} : { group }),
  };
}

/** Seals a signed request to a recipient KeyPackage's init key (before padding). `ephemeralIkm`: vectors only. */
export async function sealReentry(
  request: ReentryRequest,
  suite: number,
  initKey: Uint8Array,
  ephemeralIkm?: Uint8Array,
): Promise<Uint8Array> {
  return seal(SEALED_REENTRY, suite, initKey, REENTRY_INFO, encodeReentryPlaintext(request), ephemeralIkm);
}

/** Opens a padded sealed request with the first init key that opens it, and parses it. */
export async function openReentry(payload: Uint8Array, keys: readonly InitKey[]): Promise<ReentryRequest> {
  try {
    return decodeReentryPlaintext(await open(SEALED_REENTRY, payload, REENTRY_INFO, keys));
  } catch (e) {
    if (e instanceof SealedError) throw new ReentryError(e.message);
    throw e;
  }
}
