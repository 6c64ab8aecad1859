// The device's repo records (docs/spec.md §3): `chat.mls.declaration`, `chat.mls.keyPackage`,
// `chat.mls.device`, typed from lexicons/chat/mls/{declaration,keyPackage,device}.json, with
// their JSON form for com.atproto.repo.* and a parser that accepts a record read back as JSON
// (`{"$bytes"}`), as @atproto/api returns it (Uint8Array), or decoded from a proof's DAG-CBOR.
import { base64Encode } from "./encoding.js";
import * as J from "./json.js";
import type { Did } from "./json.js";
import type { MailboxRef } from "./lexicon.js";

/** Collection NSIDs. */
export const COLLECTION = {
  declaration: "chat.mls.declaration",
  keyPackage: "chat.mls.keyPackage",
  device: "chat.mls.device",
} as const;

/** `chat.mls.declaration` (record key `self`). */
export interface DeclarationRecord {
  readonly deliveryService: Did;
  /** Known values `anyone`, `following`, `none`; an unknown value counts as `none`. */
  readonly invitePolicy: string;
  readonly ciphersuites: readonly number[];
  readonly createdAt: string;
}

/** `chat.mls.keyPackage` (record key a TID). */
export interface KeyPackageRecord {
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
  readonly deviceKey: Uint8Array;
  readonly createdAt: string;
}

const b = (x: Uint8Array) => ({ $bytes: base64Encode(x) });

/** The JSON form of a declaration, `$type` included. */
export function declarationJson(r: DeclarationRecord): Record<string, unknown> {
  return { $type: COLLECTION.declaration, deliveryService: r.deliveryService, invitePolicy: r.invitePolicy, ciphersuites: [...r.ciphersuites], createdAt: r.createdAt };
}

/** The JSON form of a KeyPackage record. */
export function keyPackageJson(r: KeyPackageRecord): Record<string, unknown> {
  return {
    $type: COLLECTION.keyPackage,
    keyPackage: b(r.keyPackage),
    keyPackageRef: b(r.keyPackageRef),
    ciphersuite: r.ciphersuite,
    deviceId: r.deviceId,
    inbox: { service: r.inbox.service, mailbox: r.inbox.mailbox },
    lastResort: r.lastResort,
    createdAt: r.createdAt,
    expiresAt: r.expiresAt,
  };
}

/** The JSON form of a device record. */
export function deviceJson(r: DeviceRecord): Record<string, unknown> {
  return { $type: COLLECTION.device, deviceId: r.deviceId, deviceKey: b(r.deviceKey), createdAt: r.createdAt };
}

function anyBytes(v: unknown, path: string, min: number, max: number): Uint8Array {
  if (v instanceof Uint8Array) {
    if (v.length < min || v.length > max) throw new J.ShapeError(path, `length not in ${min}..${max}`);
    return v;
  }
  return J.bytes(v, path, min, max);
}

function typed(v: unknown, type: string): J.JsonObject {
  const o = J.obj(v, "record");
  if (o["$type"] !== type) throw new J.ShapeError("record/$type", `not ${type}`);
  return o;
}

/** Parses a declaration against its lexicon. */
export function parseDeclaration(v: unknown): DeclarationRecord {
  const o = typed(v, COLLECTION.declaration);
  const suites = J.arr(o["ciphersuites"], "record/ciphersuites", 16).map((s, i) => J.int(s, `record/ciphersuites/${i}`, 1, 65535));
  if (suites.length < 1) throw new J.ShapeError("record/ciphersuites", "empty");
  return {
    deliveryService: J.did(o["deliveryService"], "record/deliveryService"),
    invitePolicy: J.str(o["invitePolicy"], "record/invitePolicy", 64),
    ciphersuites: suites,
    createdAt: J.datetime(o["createdAt"], "record/createdAt"),
  };
}

/** Parses a KeyPackage record against its lexicon (the MLS content is checked by the MLS layer, §3.3 step 8). */
export function parseKeyPackageRecord(v: unknown): KeyPackageRecord {
  const o = typed(v, COLLECTION.keyPackage);
  const inbox = J.obj(o["inbox"], "record/inbox");
  const deviceId = J.str(o["deviceId"], "record/deviceId", 64);
  if (new TextEncoder().encode(deviceId).length < 8) throw new J.ShapeError("record/deviceId", "shorter than 8 bytes");
  return {
    keyPackage: anyBytes(o["keyPackage"], "record/keyPackage", 1, 16384),
    keyPackageRef: anyBytes(o["keyPackageRef"], "record/keyPackageRef", 16, 64),
    ciphersuite: J.int(o["ciphersuite"], "record/ciphersuite", 1, 65535),
    deviceId,
    inbox: { service: J.did(inbox["service"], "record/inbox/service"), mailbox: J.mailboxId(inbox["mailbox"], "record/inbox/mailbox") },
    lastResort: J.bool(o["lastResort"], "record/lastResort"),
    createdAt: J.datetime(o["createdAt"], "record/createdAt"),
    expiresAt: J.datetime(o["expiresAt"], "record/expiresAt"),
  };
}

/** Parses a device record. */
export function parseDeviceRecord(v: unknown): DeviceRecord {
  const o = typed(v, COLLECTION.device);
  return {
    deviceId: J.str(o["deviceId"], "record/deviceId", 64),
    deviceKey: anyBytes(o["deviceKey"], "record/deviceKey", 32, 32),
    createdAt: J.datetime(o["createdAt"], "record/createdAt"),
  };
}
