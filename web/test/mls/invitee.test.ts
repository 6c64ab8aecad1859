// A committer's checks of KeyPackage records (docs/spec.md §3.3 steps 8–9, §11.9, §11.16.5).
import { test } from "node:test";
import assert from "node:assert/strict";
import { ed25519 } from "@noble/curves/ed25519.js";
import { checkKeyPackageRecord } from "../../src/mls/index.js";
import { show } from "./helpers.js";
import { World } from "./world.js";

async function setup() {
  const world = new World();
  const carol = world.device("carol");
  const published = await carol.publish();
  const path = `${carol.did}/chat.mls.keyPackage/${published.invitee.rkey}`;
  const record = world.records.get(path) as Record<string, unknown>;
  const source = { did: carol.did, rkey: published.invitee.rkey, proof: published.invitee.proof };
  return { world, carol, published, record, source };
}

test("a good record becomes an Invitee (after its DID is resolved)", async () => {
  const { world, published, record, source } = await setup();
  assert.deepEqual(await checkKeyPackageRecord(record, source, Date.now(), world.material([])), { kind: "needsKeys", dids: [source.did] });
  const ok = await checkKeyPackageRecord(record, source, Date.now(), world.material());
  assert.equal(ok.kind, "ok", show(ok));
  if (ok.kind === "ok") assert.deepEqual(ok.invitee.keyPackageRef, published.built.keyPackageRef);
});

test("refusals: identity, ref, suite, expiry within the hour, binding, malformed, tampered", async () => {
  const { world, carol, record, source } = await setup();
  const now = Date.now();
  const refusal = async (r: unknown, s = source, at = now) => {
    const got = await checkKeyPackageRecord(r, s, at, world.material());
    assert.equal(got.kind, "refused", show(got));
    return got.kind === "refused" ? got.refusal.kind : "";
  };
  assert.equal(await refusal(record, { ...source, did: "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb" }), "WrongIdentity");
  assert.equal(await refusal({ ...record, keyPackageRef: new Uint8Array(32) }), "RefMismatch");
  assert.equal(await refusal({ ...record, ciphersuite: 0x4d }), "Ciphersuite");
  assert.equal(await refusal({ ...record, expiresAt: new Date(now + 30 * 60_000).toISOString() }), "Expired");
  assert.equal(await refusal({ ...record, deviceId: "anotherdevice123" }), "DeviceBinding");
  assert.equal(await refusal({ ...record, keyPackage: Uint8Array.from([0, 1, 0, 5, 0]) }), "Malformed");
  assert.equal(await refusal({ ...record, $type: "chat.mls.device" }), "Lexicon");
  const tampered = (record["keyPackage"] as Uint8Array).slice();
  tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
  assert.equal(await refusal({ ...record, keyPackage: tampered }), "Invalid");
  const forged = await carol.publish({ identity: { ...carol.identity, deviceKeySeed: ed25519.utils.randomSecretKey() } });
  const forgedRecord = world.records.get(`${carol.did}/chat.mls.keyPackage/${forged.invitee.rkey}`);
  assert.equal(await refusal(forgedRecord, { ...source, rkey: forged.invitee.rkey, proof: forged.invitee.proof }), "DeviceBinding");
});
