// The chat.mls records (docs/spec.md §3, lexicons/chat/mls/*.json): typed parse functions
// from the data model (a record block decoded from DAG-CBOR, or `fromJson` of the JSON form
// that com.atproto.repo.* returns), each record's data-model value for writing, and its
// DAG-CBOR bytes and CID. Parsing applies the lexicon's rules; fields a later lexicon
// revision may add are ignored (§2, versioning).
import type { CID } from "multiformats/cid";
import { CID as Cid, DAG_CBOR, type Ipld, cidOf, encodeDagCbor } from "./data-model.js";
import { LexiconError, arr, bool, bytes, datetime, did, int, obj, str } from "./lexicon-strings.js";
import { type MailboxId, MailboxIdError, parseMailboxId } from "./mailbox-id.js";

/** `chat.mls.declaration` (record key `self`). */
export interface Declaration {
  readonly deliveryService: string;
  /** Known values `anyone`, `following`, `none`; an unknown value counts as `none` for inviters. */
  readonly invitePolicy: string;
  /** MLS cipher suites, most preferred first. */
  readonly ciphersuites: readonly number[];
  readonly createdAt: string;
}

/** `chat.mls.defs#mailboxRef`. */
export interface MailboxRef {
  readonly service: string;
  readonly mailbox: MailboxId;
}

/** `chat.mls.keyPackage` (record key a TID), before its KeyPackage is checked (key-package-record.ts). */
export interface KeyPackageRecord {
  /** The TLS-encoded MLSMessage (mls_key_package). */
  readonly keyPackage: Uint8Array;
  readonly keyPackageRef: Uint8Array;
  readonly ciphersuite: number;
  readonly deviceId: string;
  readonly inbox: MailboxRef;
  readonly lastResort: boolean;
  readonly createdAt: string;
  readonly expiresAt: string;
}

/** `chat.mls.device` (record key the device id). */
export interface DeviceRecord {
  readonly deviceId: string;
  /** Ed25519 public key, 32 bytes. */
  readonly deviceKey: Uint8Array;
  readonly createdAt: string;
}

/** A blob reference of the data model (`$type: blob`). */
export interface BlobRef {
  readonly ref: CID;
  readonly mimeType: string;
  readonly size: number;
}

/** `chat.mls.attachmentRef` (record key a TID). */
export interface AttachmentRefRecord {
  readonly blob: BlobRef;
}

/** NSIDs of the records. */
export const DECLARATION = "chat.mls.declaration";
export const KEY_PACKAGE = "chat.mls.keyPackage";
export const DEVICE = "chat.mls.device";
export const ATTACHMENT_REF = "chat.mls.attachmentRef";

function record(type: string, value: unknown): Record<string, unknown> {
  const r = obj("record", value);
  if (r["$type"] !== type) throw new LexiconError("$type", `not ${type}`);
  return r;
}

const DEVICE_ID = { minLength: 8, maxLength: 64 } as const;

/** Parses a `chat.mls.declaration` record. */
export function parseDeclaration(value: unknown): Declaration {
  const r = record(DECLARATION, value);
  return {
    deliveryService: did("deliveryService", r["deliveryService"]),
    invitePolicy: str("invitePolicy", r["invitePolicy"], { maxLength: 64 }),
    ciphersuites: arr("ciphersuites", r["ciphersuites"], 1, 16).map((s, i) => int(`ciphersuites[${i}]`, s, 1, 65535)),
    createdAt: datetime("createdAt", r["createdAt"]),
  };
}

function mailboxRef(path: string, value: unknown): MailboxRef {
  const m = obj(path, value);
  const mailbox = str(`${path}.mailbox`, m["mailbox"]);
  try {
    return { service: did(`${path}.service`, m["service"]), mailbox: parseMailboxId(mailbox) };
  } catch (e) {
    throw e instanceof MailboxIdError ? new LexiconError(`${path}.mailbox`, e.message) : e;
  }
}

/** Parses a `chat.mls.keyPackage` record (the lexicon only; the KeyPackage inside is not yet read). */
export function parseKeyPackageRecord(value: unknown): KeyPackageRecord {
  const r = record(KEY_PACKAGE, value);
  return {
    keyPackage: bytes("keyPackage", r["keyPackage"], 1, 16384),
    keyPackageRef: bytes("keyPackageRef", r["keyPackageRef"], 16, 64),
    ciphersuite: int("ciphersuite", r["ciphersuite"], 1, 65535),
    deviceId: str("deviceId", r["deviceId"], DEVICE_ID),
    inbox: mailboxRef("inbox", r["inbox"]),
    lastResort: bool("lastResort", r["lastResort"]),
    createdAt: datetime("createdAt", r["createdAt"]),
    expiresAt: datetime("expiresAt", r["expiresAt"]),
  };
}

/** Parses a `chat.mls.device` record; with `rkey`, the record key must equal `deviceId`. */
export function parseDeviceRecord(value: unknown, rkey?: string): DeviceRecord {
  const r = record(DEVICE, value);
  const deviceId = str("deviceId", r["deviceId"], DEVICE_ID);
  if (rkey !== undefined && rkey !== deviceId) throw new LexiconError("deviceId", "differs from the record key");
  return { deviceId, deviceKey: bytes("deviceKey", r["deviceKey"], 32, 32), createdAt: datetime("createdAt", r["createdAt"]) };
}

/** Parses a `chat.mls.attachmentRef` record. */
export function parseAttachmentRef(value: unknown): AttachmentRefRecord {
  const r = record(ATTACHMENT_REF, value);
  const b = obj("blob", r["blob"]);
  if (b["$type"] !== "blob") throw new LexiconError("blob.$type", "not blob");
  const ref = Cid.asCID(b["ref"]);
  if (ref === null) throw new LexiconError("blob.ref", "not a CID link");
  return {
    blob: {
      ref,
      mimeType: str("blob.mimeType", b["mimeType"], { minLength: 1, maxLength: 256 }),
      size: int("blob.size", b["size"], 0, 100 * 1024 * 1024),
    },
  };
}

/** The data-model value of a declaration, `$type` included. */
export function declarationValue(d: Declaration): { [key: string]: Ipld } {
  return { $type: DECLARATION, deliveryService: d.deliveryService, invitePolicy: d.invitePolicy, ciphersuites: [...d.ciphersuites], createdAt: d.createdAt };
}

/** The data-model value of a KeyPackage record, `$type` included. */
export function keyPackageRecordValue(k: KeyPackageRecord): { [key: string]: Ipld } {
  return {
    $type: KEY_PACKAGE,
    keyPackage: k.keyPackage,
    keyPackageRef: k.keyPackageRef,
    ciphersuite: k.ciphersuite,
    deviceId: k.deviceId,
    inbox: { service: k.inbox.service, mailbox: k.inbox.mailbox },
    lastResort: k.lastResort,
    createdAt: k.createdAt,
    expiresAt: k.expiresAt,
  };
}

/** The data-model value of a device record, `$type` included. */
export function deviceRecordValue(d: DeviceRecord): { [key: string]: Ipld } {
  return { $type: DEVICE, deviceId: d.deviceId, deviceKey: d.deviceKey, createdAt: d.createdAt };
}

/** The data-model value of an attachmentRef record, `$type` included. */
export function attachmentRefValue(a: AttachmentRefRecord): { [key: string]: Ipld } {
  return { $type: ATTACHMENT_REF, blob: { $type: "blob", ref: a.blob.ref, mimeType: a.blob.mimeType, size: a.blob.size } };
}

/** A record's repo block: canonical DAG-CBOR and its CIDv1 (dag-cbor, SHA-256). */
export async function recordBlock(value: { [key: string]: Ipld }): Promise<{ bytes: Uint8Array; cid: CID }> {
  const bytes = encodeDagCbor(value);
  return { bytes, cid: await cidOf(DAG_CBOR, bytes) };
}
