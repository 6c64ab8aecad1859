// The group data extension 0xF0A7 (docs/spec.md §11.2): a GroupContext extension naming
// the group's DS and mailbox, its name, description, admins, padding and message lifetime.
import { type Did, parseDid } from "./did.js";
import { GROUP_DATA_EXTENSION } from "./constants.js";
import { DecodeError, Reader, putUint, putVector, utf8Bytes } from "./tls.js";

/** The only version written and read. */
export const GROUP_DATA_VERSION = 2;
const MAX_DS = 2048;
const MAX_NAME = 1024;
const MAX_DESCRIPTION = 4096;
const MAX_ADMINS = 64;
/** The admins field holds at most 64 DIDs of at most 2048 bytes with their lengths. */
const MAX_ADMINS_BYTES = MAX_ADMINS * (MAX_DS + 2);
/** Message lifetime bounds (§11.18), seconds. */
export const MIN_LIFETIME = 60;
export const MAX_LIFETIME = 31_536_000;

/** How payloads sent to the DS are padded: 0 = none, 1 = buckets v1 (§5). */
export type PaddingPolicy = 0 | 1;

/** A group's data: what the 0xF0A7 extension says. */
export interface GroupData {
  readonly ds: Did;
  /** The mailbox id, 32 raw bytes (all zero in epoch 0). */
  readonly mailbox: Uint8Array;
  readonly name: string;
  readonly description: string;
  readonly admins: readonly Did[];
  readonly padding: PaddingPolicy;
  /** Message lifetime in seconds; 0 = none, else 60..=31536000. */
  readonly lifetimeSeconds: number;
}

/** Group data that cannot be written (a field over its limit). */
export class GroupDataError extends Error {
  override readonly name = "GroupDataError";
}

function checkLifetime(seconds: number): boolean {
  return seconds === 0 || (Number.isInteger(seconds) && seconds >= MIN_LIFETIME && seconds <= MAX_LIFETIME);
}

/** The extension's data bytes (`GroupData` of §11.2). */
export function encodeGroupData(data: GroupData): Uint8Array {
  const out: number[] = [];
  const bounded = (what: string, bytes: Uint8Array, max: number) => {
    if (bytes.length > max) throw new GroupDataError(`${what}: ${bytes.length} bytes, at most ${max}`);
    return bytes;
  };
  if (data.mailbox.length !== 32) throw new GroupDataError("mailbox: not 32 bytes");
  if (data.admins.length > MAX_ADMINS) throw new GroupDataError(`admins: ${data.admins.length}, at most ${MAX_ADMINS}`);
  if (!checkLifetime(data.lifetimeSeconds)) throw new GroupDataError(`lifetime: ${data.lifetimeSeconds}`);
  putUint(out, GROUP_DATA_VERSION, 1);
  putVector(out, bounded("ds", utf8Bytes(data.ds), MAX_DS));
  for (const b of data.mailbox) out.push(b);
  putVector(out, bounded("name", utf8Bytes(data.name), MAX_NAME));
  putVector(out, bounded("description", utf8Bytes(data.description), MAX_DESCRIPTION));
  const admins: number[] = [];
  for (const admin of data.admins) putVector(admins, bounded("admin", utf8Bytes(admin), MAX_DS));
  putVector(out, Uint8Array.from(admins));
  putUint(out, data.padding, 1);
  putUint(out, data.lifetimeSeconds, 4);
  return Uint8Array.from(out);
}

/** Parses the extension's data; refuses anything §11.2 says readers refuse. */
export function decodeGroupData(bytes: Uint8Array): GroupData {
  const r = new Reader(bytes);
  const version = r.uint(1, "version");
  if (version !== GROUP_DATA_VERSION) throw new DecodeError(`group data version ${version}`);
  const ds = did(r.text(MAX_DS, "ds"), "ds");
  const mailbox = r.fixed(32, "mailbox");
  const name = r.text(MAX_NAME, "name");
  const description = r.text(MAX_DESCRIPTION, "description");
  const adminBytes = new Reader(r.vector(MAX_ADMINS_BYTES, "admins"));
  const admins: Did[] = [];
  while (!adminBytes.atEnd) {
    if (admins.length === MAX_ADMINS) throw new DecodeError(`admins: more than ${MAX_ADMINS}`);
    admins.push(did(adminBytes.text(MAX_DS, "admin"), "admin"));
  }
  const padding = r.uint(1, "padding");
  if (padding !== 0 && padding !== 1) throw new DecodeError(`padding ${padding}`);
  const lifetimeSeconds = r.uint(4, "lifetime");
  if (!checkLifetime(lifetimeSeconds)) throw new DecodeError(`lifetime ${lifetimeSeconds}`);
  r.end("group data");
  return { ds, mailbox, name, description, admins, padding, lifetimeSeconds };
}

function did(text: string, what: string): Did {
  const parsed = parseDid(text);
  if (parsed === undefined) throw new DecodeError(`${what}: not a DID`);
  return parsed;
}

/** The GroupContext extension carrying `data`. */
export function groupDataExtension(data: GroupData): { extensionType: number; extensionData: Uint8Array } {
  return { extensionType: GROUP_DATA_EXTENSION, extensionData: encodeGroupData(data) };
}

/** Whether `did` is an admin of the group. */
export function isAdmin(data: GroupData, did: string): boolean {
  return data.admins.includes(did as Did);
}

/** Whether two group data are the same (byte for byte once encoded). */
export function sameGroupData(a: GroupData, b: GroupData): boolean {
  const x = encodeGroupData(a);
  const y = encodeGroupData(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}
