// Checks of leaves against the account repos (docs/spec.md §11.13, §11.16.4), from the
// group state and the key material of the step.
import type { KeyPackage, LeafNode } from "ts-mls";
import { DEVICE_COLLECTION, decodeDeviceBinding, verifyBindingSignature } from "./binding.js";
import { DEVICE_BINDING_EXTENSION, SUITE_ID } from "./constants.js";
import { type KeyMaterial, MissingKey, type ResolvedKey } from "./material.js";
import { credentialDid } from "./suite.js";
import { DecodeError, Reader, bytesEqual } from "./tls.js";

/** Why a leaf's device binding is refused (§11.16.4), in the order checked. */
export type BindingRefusal =
  | { readonly kind: "Missing" }
  | { readonly kind: "Malformed"; readonly reason: string }
  | { readonly kind: "DeviceIdMismatch" }
  | { readonly kind: "Record"; readonly reason: string }
  | { readonly kind: "NoSuchDevice" }
  | { readonly kind: "BadSignature" };

/** The device id in a leaf's `application_id` extension (its data is `opaque id<V>`). */
export function leafDeviceId(leaf: LeafNode): string | undefined {
  const ext = leaf.extensions.find((e) => e.extensionType === "application_id" || e.extensionType === 1);
  if (ext === undefined) return undefined;
  try {
    const r = new Reader(ext.extensionData);
    const id = r.text(0x3fffffff, "application_id");
    r.end("application_id");
    return id;
  } catch {
    return undefined;
  }
}

/** The 0xF0A9 extension data of a leaf, if any. */
export function leafBindingBytes(leaf: LeafNode): Uint8Array | undefined {
  return leaf.extensions.find((e) => e.extensionType === DEVICE_BINDING_EXTENSION)?.extensionData;
}

function resolvedKey<K>(material: KeyMaterial<K>, did: string): ResolvedKey<K> {
  const resolved = material.keys.get(did);
  if (resolved === undefined) throw new MissingKey(did);
  return resolved;
}

/** The parsed `chat.mls.device` fields a binding needs. */
function deviceRecord(record: unknown): { deviceId: string; deviceKey: Uint8Array } | undefined {
  if (typeof record !== "object" || record === null) return undefined;
  const r = record as Record<string, unknown>;
  const { deviceId, deviceKey } = r;
  if (r["$type"] !== DEVICE_COLLECTION || typeof deviceId !== "string" || !(deviceKey instanceof Uint8Array)) return undefined;
  return { deviceId, deviceKey };
}

/**
 * §11.16.4 for one leaf whose credential names `did`: undefined when the binding holds.
 * Throws MissingKey when `did` is not in the material.
 */
export async function checkLeafBinding<K>(leaf: LeafNode, did: string, material: KeyMaterial<K>): Promise<BindingRefusal | undefined> {
  const bytes = leafBindingBytes(leaf);
  if (bytes === undefined) return { kind: "Missing" };
  let binding;
  try {
    binding = decodeDeviceBinding(bytes);
  } catch (e) {
    return { kind: "Malformed", reason: e instanceof DecodeError ? e.message : "unparsable" };
  }
  if (leafDeviceId(leaf) !== binding.deviceId) return { kind: "DeviceIdMismatch" };
  const key = resolvedKey(material, did);
  if (key.kind === "refused") return { kind: "Record", reason: `DidDocument: ${key.reason}` };
  const verdict = await material.verifyRecord({ did, collection: DEVICE_COLLECTION, rkey: binding.deviceId, proof: binding.proof, key: key.key });
  if (verdict.kind === "refused") return { kind: "Record", reason: verdict.reason };
  const record = deviceRecord(verdict.record);
  if (record === undefined) return { kind: "Record", reason: "Lexicon" };
  if (record.deviceId !== binding.deviceId) return { kind: "NoSuchDevice" };
  if (!verifyBindingSignature(binding, record.deviceKey, did, SUITE_ID, leaf.signaturePublicKey)) return { kind: "BadSignature" };
  return undefined;
}

/** The DID of a leaf's credential, if it is a basic DID credential. */
export function leafDid(leaf: LeafNode): string | undefined {
  return credentialDid(leaf.credential);
}

/** Why an added KeyPackage's proof is refused (§11.9's KeyPackageRefusal, as receivers use it). */
export type ProofRefusal =
  | { readonly kind: "DidDocument"; readonly reason: string }
  | { readonly kind: "Proof"; readonly reason: string }
  | { readonly kind: "Lexicon" }
  | { readonly kind: "NotAdded" }
  | { readonly kind: "Ciphersuite" }
  | { readonly kind: "Expired" };

/** The parsed `chat.mls.keyPackage` fields a receiver compares. */
function keyPackageRecord(record: unknown): { keyPackage: Uint8Array; keyPackageRef: Uint8Array; ciphersuite: number; expiresAt: number } | undefined {
  if (typeof record !== "object" || record === null) return undefined;
  const r = record as Record<string, unknown>;
  const { keyPackage, keyPackageRef, ciphersuite, expiresAt } = r;
  if (r["$type"] !== "chat.mls.keyPackage") return undefined;
  if (!(keyPackage instanceof Uint8Array) || !(keyPackageRef instanceof Uint8Array)) return undefined;
  if (typeof ciphersuite !== "number" || typeof expiresAt !== "string") return undefined;
  const at = Date.parse(expiresAt);
  if (Number.isNaN(at)) return undefined;
  return { keyPackage, keyPackageRef, ciphersuite, expiresAt: at };
}

/**
 * §11.13 steps 2 and 4 for one added KeyPackage: its record proof in `did`'s repo, the
 * record's bytes and ref equal the added package's, its suite, and `expiresAt` after
 * `acceptedAt` (Unix ms).
 */
export async function checkLeafProof<K>(
  added: { keyPackage: KeyPackage; message: Uint8Array; keyPackageRef: Uint8Array },
  proof: { rkey: string; proof: Uint8Array },
  did: string,
  acceptedAt: number,
  material: KeyMaterial<K>,
): Promise<ProofRefusal | undefined> {
  const key = resolvedKey(material, did);
  if (key.kind === "refused") return { kind: "DidDocument", reason: key.reason };
  const verdict = await material.verifyRecord({ did, collection: "chat.mls.keyPackage", rkey: proof.rkey, proof: proof.proof, key: key.key });
  if (verdict.kind === "refused") return { kind: "Proof", reason: verdict.reason };
  const record = keyPackageRecord(verdict.record);
  if (record === undefined) return { kind: "Lexicon" };
  if (!bytesEqual(record.keyPackage, added.message) || !bytesEqual(record.keyPackageRef, added.keyPackageRef)) return { kind: "NotAdded" };
  if (record.ciphersuite !== SUITE_ID) return { kind: "Ciphersuite" };
  if (record.expiresAt <= acceptedAt) return { kind: "Expired" };
  return undefined;
}
