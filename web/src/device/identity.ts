// Becoming a device of a logged-in account (docs/spec.md §3, TBD-1..3, §11.9, §11.16.1):
// the declaration if absent, the inbox through service auth, the `chat.mls.device` record and
// its proof, and KeyPackages (one last-resort, `oneTime` one-time) in one applyWrites.
import { type BuiltKeyPackage, buildKeyPackage, deviceKeyPublic, newSignatureKeyPair } from "../mls/index.js";
import type { DeviceIdentity } from "../mls/binding.js";
import { type ResolverConfig, resolveDid } from "../net/did.js";
import { DsClient } from "../net/ds.js";
import * as J from "../net/json.js";
import type { Did } from "../net/json.js";
import { NSID } from "../net/lexicon.js";
import type { MailboxId } from "../net/mailbox-id.js";
import { type PdsSession, PublicRepo } from "../net/pds.js";
import * as R from "../net/repo-records.js";
import { toBase32 } from "../proto/bytes.js";
import { MailboxKey } from "../proto/request.js";
import { type DeviceState, type OwnKeyPackage } from "./records.js";

/** The suites a browser device publishes (§11.19: ts-mls has no atmls 0x004D). */
export const BROWSER_SUITES: readonly number[] = [1];
/** One-time KeyPackages kept published (§11.9 default). */
export const ONE_TIME_KEY_PACKAGES = 3;

/** The DS named by a DID: its `#chat_mls_ds` endpoint (§8). */
export async function dsEndpointOf(dsDid: string, resolver: ResolverConfig): Promise<string> {
  const doc = await resolveDid(J.did(dsDid, "ds"), resolver);
  if (doc.chatMlsDs === undefined) throw new Error("the DS's DID document names no #chat_mls_ds endpoint");
  return doc.chatMlsDs;
}

/** A new random device id: base32 of 10 random bytes, 16 characters (TBD-2). */
export function newDeviceId(): string {
  return toBase32(crypto.getRandomValues(new Uint8Array(10)));
}

/** The identity the MLS layer binds leaves with. */
export function identityOf(d: DeviceState): DeviceIdentity {
  return { did: d.did, deviceId: d.deviceId, deviceKeySeed: d.deviceKeySeed, deviceRecordProof: d.deviceRecordProof };
}

/** Builds and publishes KeyPackages in one commit, deleting `replace` in the same commit. */
export async function publishKeyPackages(
  session: PdsSession,
  d: DeviceState,
  which: readonly boolean[],
  replace: readonly string[] = [],
): Promise<OwnKeyPackage[]> {
  const built: BuiltKeyPackage[] = [];
  for (const lastResort of which) {
    built.push(
      await buildKeyPackage({ device: identityOf(d), signatureKey: { signKey: d.kpSignPriv, publicKey: d.kpSignPub }, lastResort, now: Date.now() }),
    );
  }
  const records: R.KeyPackageRecord[] = built.map((b) => ({
    keyPackage: b.message,
    keyPackageRef: b.keyPackageRef,
    ciphersuite: 1,
    deviceId: d.deviceId,
    inbox: { service: d.dsDid as Did, mailbox: d.inbox as MailboxId },
    lastResort: b.lastResort,
    createdAt: new Date(b.createdAt).toISOString(),
    expiresAt: new Date(b.expiresAt).toISOString(),
  }));
  const written = await session.publishKeyPackages(records, replace);
  return built.map((b, i) => ({
    ref: b.keyPackageRef,
    rkey: written[i]!.uri.split("/").pop()!,
    publicPackage: b.publicPackage,
    initPrivateKey: b.privatePackage.initPrivateKey,
    hpkePrivateKey: b.privatePackage.hpkePrivateKey,
    lastResort: b.lastResort,
    expiresAt: b.expiresAt,
  }));
}

/** What becoming a device needs besides the session. */
export interface SetupOptions {
  readonly resolver: ResolverConfig;
  /** The DS to use when the account has no declaration yet (its describeServer names its DID). */
  readonly dsEndpoint: string;
}

/**
 * Makes this browser a device of the session's account: the returned state and packages are
 * what the caller writes in one batch. Network steps come first; a failure leaves records on
 * the PDS that the next attempt does not reuse (a new device id, a new inbox).
 */
export async function becomeDevice(session: PdsSession, options: SetupOptions): Promise<{ device: DeviceState; keyPackages: OwnKeyPackage[] }> {
  let declaration = await session.declaration();
  let dsDid: string;
  let dsEndpoint: string;
  if (declaration === undefined) {
    const described = await new DsClient(options.dsEndpoint).describeServer();
    dsDid = described.did;
    dsEndpoint = await dsEndpointOf(dsDid, options.resolver).catch(() => options.dsEndpoint);
    declaration = { deliveryService: described.did, invitePolicy: "anyone", ciphersuites: BROWSER_SUITES, createdAt: new Date().toISOString() };
    await session.putDeclaration(declaration);
  } else {
    dsDid = declaration.deliveryService;
    dsEndpoint = await dsEndpointOf(dsDid, options.resolver);
  }
  const ds = new DsClient(dsEndpoint);
  const inboxKey = MailboxKey.generate();
  const token = await session.serviceAuth(dsDid as Did, NSID.createMailbox);
  const inbox = await ds.createMailbox({ kind: "inbox", key: inboxKey.publicKey }, token);
  const deviceId = newDeviceId();
  const deviceKeySeed = crypto.getRandomValues(new Uint8Array(32));
  await session.putDevice({ deviceId, deviceKey: deviceKeyPublic(deviceKeySeed), createdAt: new Date().toISOString() });
  const deviceRecordProof = await new PublicRepo(session.service, session.did).recordProof(R.COLLECTION.device, deviceId);
  const kpKey = await newSignatureKeyPair();
  const device: DeviceState = {
    did: session.did,
    handle: session.handle,
    pds: session.service,
    deviceId,
    deviceKeySeed,
    deviceRecordProof,
    kpSignPriv: kpKey.signKey,
    kpSignPub: kpKey.publicKey,
    dsDid,
    dsEndpoint,
    inbox: inbox.mailbox,
    inboxSeed: inboxKey.exportSeed(),
    ownDevicesCheckedAt: 0,
  };
  const keyPackages = await publishKeyPackages(session, device, [true, ...Array<boolean>(ONE_TIME_KEY_PACKAGES).fill(false)]);
  return { device, keyPackages };
}
