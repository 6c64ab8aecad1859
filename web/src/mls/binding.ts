// The device binding leaf extension 0xF0A9 (docs/spec.md §11.16): a signature by the
// device's long-term device key (published as `chat.mls.device/<deviceId>`) over the
// account's DID, the device id, the ciphersuite and the leaf's signature key, with the
// record's proof (a getRecord CAR) so that anyone holding the leaf can check it.
import { ed25519 } from "@noble/curves/ed25519.js";
import { DEVICE_BINDING_EXTENSION } from "./constants.js";
import { DecodeError, Reader, putUint, putVector, utf8Bytes } from "./tls.js";

/** The label that starts the signed content. */
export const DEVICE_BINDING_LABEL = "chat.mls device binding v1";
/** The only version written and read. */
export const DEVICE_BINDING_VERSION = 1;
/** The record collection of device keys. */
export const DEVICE_COLLECTION = "chat.mls.device";
const MAX_DEVICE_ID = 64;
const MAX_PROOF = 1 << 20;

/** A parsed 0xF0A9 extension. */
export interface DeviceBinding {
  readonly deviceId: string;
  /** The getRecord CAR of `chat.mls.device/<deviceId>`. */
  readonly proof: Uint8Array;
  /** Ed25519 signature (64 bytes) by the device key over the DeviceBindingTBS. */
  readonly signature: Uint8Array;
}

/** `DeviceBindingTBS` (§11.16.3). */
export function bindingSignatureInput(did: string, deviceId: string, cipherSuite: number, leafSignatureKey: Uint8Array): Uint8Array {
  const out: number[] = [];
  putVector(out, utf8Bytes(DEVICE_BINDING_LABEL));
  putVector(out, utf8Bytes(did));
  putVector(out, utf8Bytes(deviceId));
  putUint(out, cipherSuite, 2);
  putVector(out, leafSignatureKey);
  return Uint8Array.from(out);
}

/** The extension's data bytes (§11.16.2). */
export function encodeDeviceBinding(binding: DeviceBinding): Uint8Array {
  const id = utf8Bytes(binding.deviceId);
  if (id.length < 1 || id.length > MAX_DEVICE_ID) throw new RangeError("device id: 1 to 64 bytes");
  if (binding.proof.length > MAX_PROOF) throw new RangeError("proof: at most 1 MiB");
  if (binding.signature.length !== 64) throw new RangeError("signature: 64 bytes");
  const out: number[] = [];
  putUint(out, DEVICE_BINDING_VERSION, 1);
  putVector(out, id);
  putVector(out, binding.proof);
  putVector(out, binding.signature);
  return Uint8Array.from(out);
}

/** Parses the extension's data; refuses what §11.16.2 says readers refuse. */
export function decodeDeviceBinding(bytes: Uint8Array): DeviceBinding {
  const r = new Reader(bytes);
  const version = r.uint(1, "version");
  if (version !== DEVICE_BINDING_VERSION) throw new DecodeError(`device binding version ${version}`);
  const deviceId = r.text(MAX_DEVICE_ID, "device id");
  if (deviceId.length === 0) throw new DecodeError("device id: empty");
  const proof = r.vector(MAX_PROOF, "proof");
  const signature = r.vector(64, "signature");
  if (signature.length !== 64) throw new DecodeError("signature: not 64 bytes");
  r.end("device binding");
  return { deviceId, proof, signature };
}

/** What a device needs to bind its leaves: its account, id, device key and record proof. */
export interface DeviceIdentity {
  readonly did: string;
  readonly deviceId: string;
  /** The device key's Ed25519 secret seed (32 bytes). */
  readonly deviceKeySeed: Uint8Array;
  /** The getRecord CAR of `chat.mls.device/<deviceId>` (§11.16.1). */
  readonly deviceRecordProof: Uint8Array;
}

/** The device key's public half (the `deviceKey` of its record). */
export function deviceKeyPublic(seed: Uint8Array): Uint8Array {
  return ed25519.getPublicKey(seed);
}

/** The binding of a leaf whose signature key is `leafSignatureKey`, in `cipherSuite`. */
export function signBinding(device: DeviceIdentity, cipherSuite: number, leafSignatureKey: Uint8Array): DeviceBinding {
  const input = bindingSignatureInput(device.did, device.deviceId, cipherSuite, leafSignatureKey);
  return { deviceId: device.deviceId, proof: device.deviceRecordProof, signature: ed25519.sign(input, device.deviceKeySeed) };
}

/** Strict (RFC 8032, not ZIP-215) verification of a binding's signature by `deviceKey`. */
export function verifyBindingSignature(
  binding: DeviceBinding,
  deviceKey: Uint8Array,
  did: string,
  cipherSuite: number,
  leafSignatureKey: Uint8Array,
): boolean {
  if (deviceKey.length !== 32) return false;
  const input = bindingSignatureInput(did, binding.deviceId, cipherSuite, leafSignatureKey);
  try {
    return ed25519.verify(binding.signature, input, deviceKey, { zip215: false });
  } catch {
    return false;
  }
}

/** The leaf node extension carrying `binding`. */
export function deviceBindingExtension(binding: DeviceBinding): { extensionType: number; extensionData: Uint8Array } {
  return { extensionType: DEVICE_BINDING_EXTENSION, extensionData: encodeDeviceBinding(binding) };
}
