// The device's stored records and their names (docs/spec.md §11.11 "Browser device state"):
//   device            this device: account, ids, device key, inbox, DS, KeyPackage signature key
//   kp/<ref hex>      one published KeyPackage's private keys and record key
//   group/<id hex>    one group: the MLS state, mailbox, read cursor, own payload digests
//   msg/<id hex>/<n>  one message of a group, in order of reading
//   used/<ref hex>    a one-time KeyPackage of another device this device put in a commit (§11.9)
import { type ClientState, type KeyPackage, decodeGroupState, decodeMlsMessage, encodeGroupState, encodeMlsMessage } from "ts-mls";
import { clientConfig } from "../mls/suite.js";
import { Fields, StateCorrupt, putOp } from "./storage.js";
import type { WriteOp } from "../store/store.js";

import { hexEncode as hex } from "../proto/encoding.js";

export { hex };

/** This device as stored. */
export interface DeviceState {
  readonly did: string;
  readonly handle: string;
  readonly pds: string;
  readonly deviceId: string;
  readonly deviceKeySeed: Uint8Array;
  /** The getRecord CAR of `chat.mls.device/<deviceId>` (§11.16.1). */
  readonly deviceRecordProof: Uint8Array;
  /** The KeyPackage signature key (one for all this device's packages). */
  readonly kpSignPriv: Uint8Array;
  readonly kpSignPub: Uint8Array;
  readonly dsDid: string;
  readonly dsEndpoint: string;
  readonly inbox: string;
  readonly inboxSeed: Uint8Array;
  /** Unix ms of the last check for the account's other devices (§11.10). */
  readonly ownDevicesCheckedAt: number;
}

export const DEVICE = "device";

export function deviceOp(d: DeviceState): WriteOp {
  return putOp(DEVICE, { ...d });
}

export function parseDevice(f: Fields): DeviceState {
  return {
    did: f.str("did"),
    handle: f.str("handle"),
    pds: f.str("pds"),
    deviceId: f.str("deviceId"),
    deviceKeySeed: f.bytes("deviceKeySeed"),
    deviceRecordProof: f.bytes("deviceRecordProof"),
    kpSignPriv: f.bytes("kpSignPriv"),
    kpSignPub: f.bytes("kpSignPub"),
    dsDid: f.str("dsDid"),
    dsEndpoint: f.str("dsEndpoint"),
    inbox: f.str("inbox"),
    inboxSeed: f.bytes("inboxSeed"),
    ownDevicesCheckedAt: f.num("ownDevicesCheckedAt"),
  };
}

/** One of this device's published KeyPackages with its private keys. */
export interface OwnKeyPackage {
  readonly ref: Uint8Array;
  readonly rkey: string;
  readonly publicPackage: KeyPackage;
  readonly initPrivateKey: Uint8Array;
  readonly hpkePrivateKey: Uint8Array;
  readonly lastResort: boolean;
  readonly expiresAt: number;
}

export const kpName = (ref: Uint8Array) => `kp/${hex(ref)}`;

export function kpOp(k: OwnKeyPackage): WriteOp {
  return putOp(kpName(k.ref), {
    ref: k.ref,
    rkey: k.rkey,
    message: encodeMlsMessage({ version: "mls10", wireformat: "mls_key_package", keyPackage: k.publicPackage }),
    initPrivateKey: k.initPrivateKey,
    hpkePrivateKey: k.hpkePrivateKey,
    lastResort: k.lastResort,
    expiresAt: k.expiresAt,
  });
}

export function parseKp(f: Fields): OwnKeyPackage {
  const decoded = decodeMlsMessage(f.bytes("message"), 0);
  if (decoded === undefined || decoded[0].wireformat !== "mls_key_package") throw new StateCorrupt("kp: not a KeyPackage");
  return {
    ref: f.bytes("ref"),
    rkey: f.str("rkey"),
    publicPackage: decoded[0].keyPackage,
    initPrivateKey: f.bytes("initPrivateKey"),
    hpkePrivateKey: f.bytes("hpkePrivateKey"),
    lastResort: f.bool("lastResort"),
    expiresAt: f.num("expiresAt"),
  };
}

/** One group as stored. */
export interface GroupRecord {
  readonly id: string;
  readonly state: ClientState;
  readonly mailbox: string;
  /** Envelopes up to this seq are processed. */
  readonly cursor: number;
  /** SHA-256 (hex) of payloads this device sent, recognised and skipped when they come back (§11.8). */
  readonly own: readonly string[];
  /** This device was removed: the group is kept to show its history, and no longer read. */
  readonly removed: boolean;
  /** Messages stored so far (the next message's index). */
  readonly messageCount: number;
  /** A commit sent whose outcome is unknown (§11.8): its payload digest and the state it leads to. */
  readonly pending?: { readonly digest: string; readonly state: ClientState };
}

export const groupName = (id: string) => `group/${id}`;
/** How many own digests are kept per group (a bounded window: they come back within a sync). */
const OWN_WINDOW = 256;

export function groupOp(g: GroupRecord): WriteOp {
  return putOp(groupName(g.id), {
    id: g.id,
    state: encodeGroupState(g.state),
    mailbox: g.mailbox,
    cursor: g.cursor,
    own: g.own.slice(-OWN_WINDOW),
    removed: g.removed,
    messageCount: g.messageCount,
    ...(g.pending === undefined ? {} : { pendingDigest: g.pending.digest, pendingState: encodeGroupState(g.pending.state) }),
  });
}

function decodeState(bytes: Uint8Array): ClientState {
  let decoded;
  try {
    decoded = decodeGroupState(bytes, 0);
  } catch {
    decoded = undefined;
  }
  if (decoded === undefined || decoded[1] !== bytes.length) throw new StateCorrupt("group: the MLS state does not decode");
  return { ...decoded[0], clientConfig };
}

export function parseGroup(f: Fields): GroupRecord {
  const pendingDigest = f.optStr("pendingDigest");
  return {
    ...(pendingDigest === undefined ? {} : { pending: { digest: pendingDigest, state: decodeState(f.bytes("pendingState")) } }),
    id: f.str("id"),
    state: decodeState(f.bytes("state")),
    mailbox: f.str("mailbox"),
    cursor: f.num("cursor"),
    own: f.strList("own"),
    removed: f.bool("removed"),
    messageCount: f.num("messageCount"),
  };
}

/** One line of a conversation: a member's message or a change of the group. */
export interface MessageRecord {
  readonly kind: "text" | "event";
  /** The sender's DID (text), or undefined (event). */
  readonly from?: string;
  readonly fromDevice?: string;
  readonly text: string;
  /** The content's `sentAt` (text) or the envelope's `receivedAt` (event). */
  readonly at: string;
  readonly seq: number;
  readonly mine: boolean;
}

export const messageName = (group: string, n: number) => `msg/${group}/${n.toString().padStart(10, "0")}`;

export function messageOp(group: string, n: number, m: MessageRecord): WriteOp {
  const v: Record<string, unknown> = { kind: m.kind, text: m.text, at: m.at, seq: m.seq, mine: m.mine };
  if (m.from !== undefined) v["from"] = m.from;
  if (m.fromDevice !== undefined) v["fromDevice"] = m.fromDevice;
  return putOp(messageName(group, n), v);
}

export function parseMessage(f: Fields): MessageRecord {
  const kind = f.str("kind");
  if (kind !== "text" && kind !== "event") throw new StateCorrupt("msg: kind");
  const from = f.optStr("from");
  const fromDevice = f.optStr("fromDevice");
  return {
    kind,
    text: f.str("text"),
    at: f.str("at"),
    seq: f.num("seq"),
    mine: f.bool("mine"),
    ...(from === undefined ? {} : { from }),
    ...(fromDevice === undefined ? {} : { fromDevice }),
  };
}

/** A one-time KeyPackage of another device used in a commit, kept until its expiry (§11.9). */
export const usedName = (ref: Uint8Array) => `used/${hex(ref)}`;
