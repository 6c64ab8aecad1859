// A committer's checks of another device's KeyPackage record before adding it (docs/spec.md
// §3.3 steps 8–9, §11.9, §11.16.5), after the record's proof passed §3.3 steps 1–7 (the
// network layer's): the KeyPackage parses and validates, speaks for the account, is in the
// group's suite with atmls's capabilities, is not about to expire, and its leaf's device
// binding verifies. The result is an Invitee for addMembers.
import type { KeyPackage } from "ts-mls";
import { decodeMlsMessage, encodeMlsMessage } from "ts-mls";
import { makeKeyPackageRef, verifyKeyPackage } from "ts-mls/keyPackage.js";
import { verifyLeafNodeSignatureKeyPackage } from "ts-mls/leafNode.js";
import type { Invitee } from "./commit.js";
import { DEVICE_BINDING_EXTENSION, GROUP_DATA_EXTENSION, LEAF_PROOFS_PROPOSAL, SUITE_ID, SUITE_NAME } from "./constants.js";
import { type KeyMaterial, MissingKey, type NeedsKeys } from "./material.js";
import { cipherSuite } from "./suite.js";
import { bytesEqual } from "./tls.js";
import { checkLeafBinding, leafDeviceId, leafDid } from "./verify.js";

/** Committers skip packages whose `expiresAt` is within the hour (§11.9). */
export const EXPIRY_MARGIN_MS = 3_600_000;

/** Why a KeyPackage record is not used (§11.9's `KeyPackageRefusal`). */
export type KeyPackageRefusal =
  | { readonly kind: "Lexicon"; readonly reason: string }
  | { readonly kind: "Malformed" }
  | { readonly kind: "Invalid"; readonly reason: string }
  | { readonly kind: "RefMismatch" }
  | { readonly kind: "WrongIdentity" }
  | { readonly kind: "Ciphersuite" }
  | { readonly kind: "Expired" }
  | { readonly kind: "MissingCapability" }
  | { readonly kind: "DeviceBinding"; readonly reason: string };

/** A KeyPackage record a committer may add. */
export interface CheckedKeyPackage {
  readonly kind: "ok";
  readonly invitee: Invitee;
  readonly deviceId: string;
  readonly lastResort: boolean;
  /** The record's `expiresAt`, Unix ms. */
  readonly expiresAt: number;
}

interface RecordFields {
  keyPackage: Uint8Array;
  keyPackageRef: Uint8Array;
  ciphersuite: number;
  deviceId: string;
  lastResort: boolean;
  expiresAt: number;
}

function fields(record: unknown): RecordFields | string {
  if (typeof record !== "object" || record === null) return "not an object";
  const r = record as Record<string, unknown>;
  if (r["$type"] !== "chat.mls.keyPackage") return "$type";
  const { keyPackage, keyPackageRef, ciphersuite, deviceId, lastResort, expiresAt } = r;
  if (!(keyPackage instanceof Uint8Array) || keyPackage.length < 1 || keyPackage.length > 16384) return "keyPackage";
  if (!(keyPackageRef instanceof Uint8Array) || keyPackageRef.length < 16 || keyPackageRef.length > 64) return "keyPackageRef";
  if (typeof ciphersuite !== "number" || !Number.isInteger(ciphersuite) || ciphersuite < 1 || ciphersuite > 65535) return "ciphersuite";
  if (typeof deviceId !== "string") return "deviceId";
  const idBytes = new TextEncoder().encode(deviceId).length;
  if (idBytes < 8 || idBytes > 64) return "deviceId";
  if (typeof lastResort !== "boolean") return "lastResort";
  const at = typeof expiresAt === "string" ? Date.parse(expiresAt) : Number.NaN;
  if (Number.isNaN(at)) return "expiresAt";
  return { keyPackage, keyPackageRef, ciphersuite, deviceId, lastResort, expiresAt: at };
}

/**
 * Checks a `chat.mls.keyPackage/<rkey>` record of `did` (already proven by `proof`) at
 * `now` (Unix ms) for a group in ciphersuite 0x0001. `material` holds `did`'s current key.
 */
export async function checkKeyPackageRecord<K>(
  record: unknown,
  source: { did: string; rkey: string; proof: Uint8Array },
  now: number,
  material: KeyMaterial<K>,
): Promise<CheckedKeyPackage | { readonly kind: "refused"; readonly refusal: KeyPackageRefusal } | NeedsKeys> {
  const refused = (refusal: KeyPackageRefusal) => ({ kind: "refused" as const, refusal });
  const f = fields(record);
  if (typeof f === "string") return refused({ kind: "Lexicon", reason: f });
  let decoded;
  try {
    decoded = decodeMlsMessage(f.keyPackage, 0);
  } catch {
    decoded = undefined;
  }
  if (decoded === undefined || decoded[1] !== f.keyPackage.length || decoded[0].wireformat !== "mls_key_package") {
    return refused({ kind: "Malformed" });
  }
  const keyPackage: KeyPackage = decoded[0].keyPackage;
  if (!bytesEqual(encodeMlsMessage(decoded[0]), f.keyPackage)) return refused({ kind: "Malformed" });
  const cs = await cipherSuite();
  const leaf = keyPackage.leafNode;
  if (leaf.leafNodeSource !== "key_package") return refused({ kind: "Invalid", reason: "leaf source" });
  if (!(await verifyKeyPackage(keyPackage, cs.signature)) || !(await verifyLeafNodeSignatureKeyPackage(leaf, cs.signature))) {
    return refused({ kind: "Invalid", reason: "signature" });
  }
  if (bytesEqual(keyPackage.initKey, leaf.hpkePublicKey)) return refused({ kind: "Invalid", reason: "init key equals encryption key" });
  const seconds = BigInt(Math.floor(now / 1000));
  if (leaf.lifetime.notBefore > seconds || leaf.lifetime.notAfter < seconds) return refused({ kind: "Invalid", reason: "MLS lifetime" });
  if (!bytesEqual(await makeKeyPackageRef(keyPackage, cs.hash), f.keyPackageRef)) return refused({ kind: "RefMismatch" });
  if (leafDid(leaf) !== source.did) return refused({ kind: "WrongIdentity" });
  if (f.ciphersuite !== SUITE_ID || keyPackage.cipherSuite !== SUITE_NAME) return refused({ kind: "Ciphersuite" });
  if (f.expiresAt <= now + EXPIRY_MARGIN_MS) return refused({ kind: "Expired" });
  const caps = leaf.capabilities;
  if (
    !caps.extensions.includes(GROUP_DATA_EXTENSION) ||
    !caps.extensions.includes(DEVICE_BINDING_EXTENSION) ||
    !caps.proposals.includes(LEAF_PROOFS_PROPOSAL) ||
    !caps.credentials.includes("basic")
  ) {
    return refused({ kind: "MissingCapability" });
  }
  if (leafDeviceId(leaf) !== f.deviceId) return refused({ kind: "DeviceBinding", reason: "DeviceIdMismatch" });
  if (!material.keys.has(source.did)) return { kind: "needsKeys", dids: [source.did] };
  let binding;
  try {
    binding = await checkLeafBinding(leaf, source.did, material);
  } catch (e) {
    if (e instanceof MissingKey) return { kind: "needsKeys", dids: [e.did] };
    throw e;
  }
  if (binding !== undefined) return refused({ kind: "DeviceBinding", reason: "reason" in binding ? `${binding.kind}: ${binding.reason}` : binding.kind });
  return {
    kind: "ok",
    invitee: { keyPackage, keyPackageRef: f.keyPackageRef, rkey: source.rkey, proof: source.proof },
    deviceId: f.deviceId,
    lastResort: f.lastResort,
    expiresAt: f.expiresAt,
  };
}
