// Records a reader must refuse, with the reason named (docs/spec.md §3, §11.9).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { fromJson } from "../../src/proto/data-model.js";
import { KeyPackageRefusal, readKeyPackage } from "../../src/proto/key-package-record.js";
import { LexiconError } from "../../src/proto/lexicon-strings.js";
import { parseDeclaration, parseDeviceRecord, parseKeyPackageRecord } from "../../src/proto/records.js";

const file = JSON.parse(readFileSync(fileURLToPath(new URL("../../../tests/vectors/records.json", import.meta.url)), "utf8")) as {
  vectors: { name: string; record: Record<string, unknown>; did?: string }[];
};
const kpVector = file.vectors.find((v) => v.name === "keyPackage");
assert.ok(kpVector?.did !== undefined);
const did = kpVector.did;
const kpJson = kpVector.record;

async function refusal(record: Record<string, unknown>, asDid = did): Promise<string> {
  try {
    await readKeyPackage(parseKeyPackageRecord(fromJson(record)), asDid);
    return "accepted";
  } catch (e) {
    assert.ok(e instanceof KeyPackageRefusal, String(e));
    return e.reason;
  }
}

test("a KeyPackage record's content is refused with its reason", async () => {
  assert.equal(await refusal(kpJson), "accepted");
  assert.equal(await refusal(kpJson, "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz"), "WrongIdentity");
  assert.equal(await refusal({ ...kpJson, deviceId: "otherdevice1" }), "DeviceIdMismatch");
  assert.equal(await refusal({ ...kpJson, lastResort: false }), "LastResortMismatch");
  assert.equal(await refusal({ ...kpJson, ciphersuite: 2 }), "Ciphersuite");
  assert.equal(await refusal({ ...kpJson, ciphersuite: 0x4d }), "Ciphersuite");
  assert.equal(await refusal({ ...kpJson, keyPackageRef: { $bytes: "AAAAAAAAAAAAAAAAAAAAAA" } }), "RefMismatch");
  const kp = kpJson["keyPackage"] as { $bytes: string };
  assert.equal(await refusal({ ...kpJson, keyPackage: { $bytes: kp.$bytes.slice(0, -8) } }), "Malformed");
});

test("lexicon rules: a short device id, a bad mailbox, a key of the wrong size, an rkey mismatch", () => {
  assert.throws(() => parseKeyPackageRecord(fromJson({ ...kpJson, deviceId: "short" })), LexiconError);
  assert.throws(() => parseKeyPackageRecord(fromJson({ ...kpJson, inbox: { service: "did:web:x", mailbox: "A".repeat(52) } })), LexiconError);
  const device = { $type: "chat.mls.device", deviceId: "k5v3mkq2xfa7ltqe", deviceKey: { $bytes: "nXBqVRFP/ZJgF3D8xzuK0iDA/jp6Z81vuFzXq9xf3Ek" }, createdAt: "2026-11-24T12:00:00.000Z" };
  assert.equal(parseDeviceRecord(fromJson(device), "k5v3mkq2xfa7ltqe").deviceKey.length, 32);
  assert.throws(() => parseDeviceRecord(fromJson(device), "another-rkey"), /record key/);
  assert.throws(() => parseDeviceRecord(fromJson({ ...device, deviceKey: { $bytes: "AAAA" } })), LexiconError);
  const decl = { $type: "chat.mls.declaration", deliveryService: "did:web:ds.example.com", invitePolicy: "anyone", ciphersuites: [1], createdAt: "2026-11-24T12:00:00.000Z" };
  assert.deepEqual(parseDeclaration(fromJson(decl)).ciphersuites, [1]);
  assert.throws(() => parseDeclaration(fromJson({ ...decl, ciphersuites: [] })), LexiconError);
  assert.throws(() => parseDeclaration(fromJson({ ...decl, $type: "chat.mls.device" })), LexiconError);
});
