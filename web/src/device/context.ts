// What every device operation works with: its storage, its state, the network clients and the
// configuration (docs/spec.md §11). Operations are functions of a Context (sync.ts, commits.ts),
// run one at a time by the Device (device.ts).
import type { ClientState } from "ts-mls";
import { mailboxKeySeed } from "../mls/state.js";
import type { ResolverConfig } from "../net/did.js";
import { DsClient } from "../net/ds.js";
import type { Limits } from "../net/lexicon.js";
import type { PdsSession } from "../net/pds.js";
import { RevTracker } from "../net/proof/verify.js";
import { MailboxKey } from "../proto/request.js";
import { dsEndpointOf } from "./identity.js";
import { type DeviceState, type GroupRecord, type OwnKeyPackage, DEVICE, groupName, parseDevice, parseGroup, parseKp } from "./records.js";
import { type DeviceStorage, StateCorrupt, readValue } from "./storage.js";

/** Settings of a device. */
export interface DeviceConfig {
  readonly resolver: ResolverConfig;
  /** Commit attempts per intent before giving up (§11.8; default 16). */
  readonly maxCommitAttempts?: number;
  /** How often sync looks for the account's other devices (§11.10; default 5 min). */
  readonly ownDeviceCheckIntervalMs?: number;
}

/** What a device has changed, for a page to redraw. */
export type DeviceEvent =
  | { readonly kind: "group"; readonly group: string }
  | { readonly kind: "groups" }
  | { readonly kind: "live"; readonly connected: boolean };

/** The device's working context. */
export interface Context {
  readonly storage: DeviceStorage;
  readonly config: DeviceConfig;
  device: DeviceState;
  /** The account's PDS session; absent after a reload until the user logs in again. */
  session: PdsSession | undefined;
  readonly ds: DsClient;
  readonly inboxKey: MailboxKey;
  readonly limits: Limits;
  readonly revs: RevTracker;
  readonly dsClients: Map<string, DsClient>;
  emit(e: DeviceEvent): void;
}

/** A permanent failure of a device operation that needs the PDS session. */
export class NeedsLogin extends Error {
  override readonly name = "NeedsLogin";
  constructor() {
    super("this operation needs the account's PDS: log in again");
  }
}

/** The session, or NeedsLogin. */
export function sessionOf(ctx: Context): PdsSession {
  if (ctx.session === undefined) throw new NeedsLogin();
  return ctx.session;
}

/** The DS client of a DS DID (the device's own, or resolved once). */
export async function dsOf(ctx: Context, did: string): Promise<DsClient> {
  if (did === ctx.device.dsDid) return ctx.ds;
  const known = ctx.dsClients.get(did);
  if (known !== undefined) return known;
  const client = new DsClient(await dsEndpointOf(did, ctx.config.resolver));
  ctx.dsClients.set(did, client);
  return client;
}

/** The mailbox key of the state's epoch (§11.3). */
export async function epochKey(state: ClientState): Promise<MailboxKey> {
  return MailboxKey.fromSeed(await mailboxKeySeed(state));
}

export async function loadDevice(storage: DeviceStorage): Promise<DeviceState | undefined> {
  return readValue(storage, DEVICE, parseDevice);
}

export async function loadGroup(ctx: Context, id: string): Promise<GroupRecord> {
  const g = await readValue(ctx.storage, groupName(id), parseGroup);
  if (g === undefined) throw new StateCorrupt("no such group");
  return g;
}

export async function groupIds(ctx: Context): Promise<string[]> {
  return (await ctx.storage.list("group/")).map((n) => n.slice("group/".length));
}

export async function ownKeyPackages(ctx: Context): Promise<OwnKeyPackage[]> {
  const out: OwnKeyPackage[] = [];
  for (const name of await ctx.storage.list("kp/")) {
    const kp = await readValue(ctx.storage, name, parseKp);
    if (kp !== undefined) out.push(kp);
  }
  return out;
}

/** SHA-256 of bytes, hex. */
export async function digestHex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes.slice()));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
}
