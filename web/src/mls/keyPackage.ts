// This device's KeyPackages, built as the reference client builds them (docs/spec.md §11.1,
// §11.9, §11.16): basic DID credential, atmls's capabilities, `application_id` = device id,
// the device binding 0xF0A9, the `last_resort` extension on the last-resort package, and
// the widest MLS lifetime receivers accept.
import {
  type Capabilities,
  type Extension,
  type KeyPackage,
  type PrivateKeyPackage,
  encodeMlsMessage,
  generateKeyPackageWithKey,
} from "ts-mls";
import { makeKeyPackageRef } from "ts-mls/keyPackage.js";
import { type DeviceIdentity, deviceBindingExtension, signBinding } from "./binding.js";
import {
  DEVICE_BINDING_EXTENSION,
  GROUP_DATA_EXTENSION,
  LAST_RESORT_EXTENSION,
  LEAF_PROOFS_PROPOSAL,
  SUITE_ID,
  SUITE_NAME,
} from "./constants.js";
import { cipherSuite } from "./suite.js";
import { utf8Bytes, vector } from "./tls.js";

/** A KeyPackage record's life by default: `expiresAt = createdAt + 30 days` (§11.9). */
export const KEY_PACKAGE_RECORD_LIFETIME_SECONDS = 30 * 86_400;
/** The MLS lifetime starts a day before creation (receivers' clocks behind). */
const MLS_LIFETIME_BACKDATE_SECONDS = 86_400;
/** The widest MLS lifetime range receivers accept: 84 days and an hour. */
const MAX_MLS_LIFETIME_SECONDS = 84 * 86_400 + 3_600;

/** The capabilities of every leaf and KeyPackage of this client (§11.1), in this order. */
export function leafCapabilities(): Capabilities {
  return {
    versions: ["mls10"],
    ciphersuites: [SUITE_NAME],
    extensions: [GROUP_DATA_EXTENSION, LAST_RESORT_EXTENSION, DEVICE_BINDING_EXTENSION],
    proposals: [LEAF_PROOFS_PROPOSAL],
    credentials: ["basic"],
  };
}

/**
 * The MLS lifetime of a KeyPackage created at `nowSeconds` whose record expires
 * `recordLifetimeSeconds` later: from a day before creation to the later of
 * (that start + 84 days + 1 hour) and (`expiresAt` + 1 day).
 */
export function mlsLifetime(nowSeconds: number, recordLifetimeSeconds: number): { notBefore: bigint; notAfter: bigint } {
  const notBefore = Math.max(0, nowSeconds - MLS_LIFETIME_BACKDATE_SECONDS);
  const notAfter = Math.max(notBefore + MAX_MLS_LIFETIME_SECONDS, nowSeconds + recordLifetimeSeconds + 86_400);
  return { notBefore: BigInt(notBefore), notAfter: BigInt(notAfter) };
}

/** The leaf extensions of this device's leaves: `application_id` and the binding of `leafSignatureKey`. */
export function leafExtensions(device: DeviceIdentity, leafSignatureKey: Uint8Array): Extension[] {
  return [
    { extensionType: "application_id", extensionData: vector(utf8Bytes(device.deviceId)) },
    deviceBindingExtension(signBinding(device, SUITE_ID, leafSignatureKey)),
  ];
}

/** An Ed25519 leaf signature key pair as ts-mls holds it. */
export interface SignatureKeyPair {
  readonly signKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** A new leaf signature key pair. */
export async function newSignatureKeyPair(): Promise<SignatureKeyPair> {
  return (await cipherSuite()).signature.keygen();
}

/** A KeyPackage built: what is published and what stays on the device. */
export interface BuiltKeyPackage {
  readonly publicPackage: KeyPackage;
  readonly privatePackage: PrivateKeyPackage;
  /** The `MLSMessage` (wire format mls_key_package): the record's `keyPackage` bytes. */
  readonly message: Uint8Array;
  /** Its KeyPackageRef: the record's `keyPackageRef`. */
  readonly keyPackageRef: Uint8Array;
  readonly lastResort: boolean;
  /** The record's `createdAt` and `expiresAt` (Unix milliseconds). */
  readonly createdAt: number;
  readonly expiresAt: number;
}

/** What a KeyPackage is built from. */
export interface KeyPackageParams {
  readonly device: DeviceIdentity;
  /** The device's KeyPackage signature key (one for all its packages). */
  readonly signatureKey: SignatureKeyPair;
  readonly lastResort: boolean;
  /** Creation instant, Unix milliseconds (the device clock). */
  readonly now: number;
  /** The record's lifetime; default 30 days. */
  readonly recordLifetimeSeconds?: number;
}

/** Builds one KeyPackage of this device in ciphersuite 0x0001. */
export async function buildKeyPackage(p: KeyPackageParams): Promise<BuiltKeyPackage> {
  const cs = await cipherSuite();
  const lifetime = p.recordLifetimeSeconds ?? KEY_PACKAGE_RECORD_LIFETIME_SECONDS;
  const nowSeconds = Math.floor(p.now / 1000);
  const { publicPackage, privatePackage } = await generateKeyPackageWithKey(
    { credentialType: "basic", identity: utf8Bytes(p.device.did) },
    leafCapabilities(),
    mlsLifetime(nowSeconds, lifetime),
    p.lastResort ? [{ extensionType: LAST_RESORT_EXTENSION, extensionData: new Uint8Array() }] : [],
    p.signatureKey,
    cs,
    leafExtensions(p.device, p.signatureKey.publicKey),
  );
  const message = encodeMlsMessage({ version: "mls10", wireformat: "mls_key_package", keyPackage: publicPackage });
  return {
    publicPackage,
    privatePackage,
    message,
    keyPackageRef: await makeKeyPackageRef(publicPackage, cs.hash),
    lastResort: p.lastResort,
    createdAt: p.now,
    expiresAt: p.now + lifetime * 1000,
  };
}
