// KeyPackages as the reference client makes them (docs/spec.md §11.1, §11.9, §11.16),
// compared field by field with the Rust-made KeyPackage of tests/vectors/records.json
// (made before device bindings: its leaf has no 0xF0A9, which is the only difference).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { decodeMlsMessage } from "ts-mls";
import {
  DEVICE_BINDING_EXTENSION,
  LAST_RESORT_EXTENSION,
  buildKeyPackage,
  decodeDeviceBinding,
  deviceKeyPublic,
  leafDeviceId,
  mlsLifetime,
  newSignatureKeyPair,
  verifyBindingSignature,
} from "../../src/mls/index.js";
import { World } from "./world.js";

const records = JSON.parse(readFileSync(new URL("../../../tests/vectors/records.json", import.meta.url), "utf8")) as {
  vectors: { name: string; record: Record<string, unknown> }[];
};

function rustKeyPackage() {
  const v = records.vectors.find((x) => x.name === "keyPackage");
  const bytes = Buffer.from((v?.record["keyPackage"] as { $bytes: string }).$bytes, "base64");
  const m = decodeMlsMessage(new Uint8Array(bytes), 0);
  if (m === undefined || m[0].wireformat !== "mls_key_package") throw new Error("vector KeyPackage does not parse");
  return m[0].keyPackage;
}

test("capabilities, credential, extensions and framing match the Rust client's KeyPackage", async () => {
  const world = new World();
  const dev = world.device("alice");
  const built = await buildKeyPackage({ device: dev.identity, signatureKey: await newSignatureKeyPair(), lastResort: true, now: Date.now() });
  const rust = rustKeyPackage();
  const ours = built.publicPackage;
  assert.equal(ours.cipherSuite, rust.cipherSuite);
  assert.deepEqual(ours.leafNode.capabilities.versions, rust.leafNode.capabilities.versions);
  assert.deepEqual(ours.leafNode.capabilities.ciphersuites, rust.leafNode.capabilities.ciphersuites);
  // Rust's capabilities since bindings: [0xF0A7, last_resort, 0xF0A9] (the vector predates 0xF0A9).
  assert.deepEqual(ours.leafNode.capabilities.extensions, [...rust.leafNode.capabilities.extensions, DEVICE_BINDING_EXTENSION]);
  assert.deepEqual(ours.leafNode.capabilities.proposals, rust.leafNode.capabilities.proposals);
  assert.deepEqual(ours.leafNode.capabilities.credentials, rust.leafNode.capabilities.credentials);
  assert.deepEqual(ours.extensions, rust.extensions, "the last_resort KeyPackage extension");
  assert.equal(ours.leafNode.credential.credentialType, "basic");
  assert.equal(new TextDecoder().decode(ours.leafNode.credential.credentialType === "basic" ? ours.leafNode.credential.identity : new Uint8Array()), dev.did);
  assert.equal(ours.leafNode.extensions[0]?.extensionType, rust.leafNode.extensions[0]?.extensionType);
  assert.equal(leafDeviceId(ours.leafNode), dev.identity.deviceId);
  assert.equal(leafDeviceId(rust.leafNode), "k5v3mkq2xfa7ltqe", "application_id data is the device id as opaque<V>");
  assert.equal(ours.leafNode.extensions[1]?.extensionType, DEVICE_BINDING_EXTENSION);
  const binding = decodeDeviceBinding(ours.leafNode.extensions[1]?.extensionData ?? new Uint8Array());
  assert.ok(verifyBindingSignature(binding, deviceKeyPublic(dev.identity.deviceKeySeed), dev.did, 1, ours.leafNode.signaturePublicKey));
  // MLSMessage framing: version mls10, wire format mls_key_package (5), then the KeyPackage.
  assert.deepEqual([...built.message.slice(0, 8)], [0x00, 0x01, 0x00, 0x05, 0x00, 0x01, 0x00, 0x01]);
  const oneTime = await buildKeyPackage({ device: dev.identity, signatureKey: await newSignatureKeyPair(), lastResort: false, now: Date.now() });
  assert.deepEqual(oneTime.publicPackage.extensions, []);
  assert.equal(LAST_RESORT_EXTENSION, 10);
});

test("lifetimes: a day back, 84 days and an hour ahead, or expiresAt plus a day", () => {
  const now = 1_800_000_000;
  assert.deepEqual(mlsLifetime(now, 30 * 86400), { notBefore: BigInt(now - 86400), notAfter: BigInt(now - 86400 + 84 * 86400 + 3600) });
  assert.deepEqual(mlsLifetime(now, 90 * 86400), { notBefore: BigInt(now - 86400), notAfter: BigInt(now + 91 * 86400) });
});

test("record fields: expiresAt 30 days after createdAt; the ref is the KeyPackageRef of the package", async () => {
  const world = new World();
  const dev = world.device("bob");
  const now = Date.UTC(2027, 0, 15, 8);
  const built = await buildKeyPackage({ device: dev.identity, signatureKey: await newSignatureKeyPair(), lastResort: false, now });
  assert.equal(built.expiresAt - built.createdAt, 30 * 86400 * 1000);
  assert.equal(built.publicPackage.leafNode.leafNodeSource, "key_package");
  const { makeKeyPackageRef } = await import("ts-mls/keyPackage.js");
  const { cipherSuite } = await import("../../src/mls/index.js");
  assert.deepEqual(built.keyPackageRef, await makeKeyPackageRef(built.publicPackage, (await cipherSuite()).hash));
  assert.equal(built.keyPackageRef.length, 32);
});
