// Readers of atmls's own MLS structures refuse what docs/spec.md says they refuse
// (§11.2 group data, §11.13 leaf proofs, §11.16.2 device binding, §11.17 epoch tag).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  DecodeError,
  type GroupData,
  aadTag,
  decodeDeviceBinding,
  decodeGroupData,
  decodeLeafProofs,
  encodeDeviceBinding,
  encodeGroupData,
  encodeLeafProofs,
  epochTag,
  parseDid,
  tagAad,
  toHex,
} from "../../src/mls/index.js";

const did = (s: string) => {
  const d = parseDid(s);
  if (d === undefined) throw new Error(s);
  return d;
};
const data: GroupData = {
  ds: did("did:web:ds.example.com"),
  mailbox: new Uint8Array(32).fill(1),
  name: "tea",
  description: "",
  admins: [did("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")],
  padding: 1,
  lifetimeSeconds: 0,
};
const hex = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));

test("group data: round trip, and every refusal of §11.2", () => {
  const good = encodeGroupData(data);
  assert.deepEqual(decodeGroupData(good), data);
  const refuse = (bytes: Uint8Array, what: RegExp) => assert.throws(() => decodeGroupData(bytes), (e) => e instanceof DecodeError && what.test(e.message));
  refuse(Uint8Array.from([1, ...good.slice(1)]), /version/);
  refuse(Uint8Array.from([...good, 0]), /trailing/);
  refuse(good.slice(0, good.length - 1), /truncated/);
  // ds with a non-minimal two-byte length (0x40 0x16 for 22).
  refuse(Uint8Array.from([2, 0x40, 0x16, ...good.slice(2)]), /non-minimal/);
  refuse(Uint8Array.from([2, 0xc0, ...good.slice(2)]), /reserved/);
  refuse(encodeGroupData({ ...data, ds: "did:web:ds.example.co\u00e9".slice(0, 22) as GroupData["ds"] }).map((b, i) => (i === 3 ? 0xff : b)), /not UTF-8/);
  refuse(encodeGroupData({ ...data, ds: "not:a:did-at-all-here!" as GroupData["ds"] }), /not a DID/);
  const withLifetime = (n: number) => {
    const b = encodeGroupData(data);
    new DataView(b.buffer).setUint32(b.length - 4, n);
    return b;
  };
  assert.equal(decodeGroupData(withLifetime(60)).lifetimeSeconds, 60);
  refuse(withLifetime(59), /lifetime/);
  refuse(withLifetime(31_536_001), /lifetime/);
  const badPadding = encodeGroupData(data);
  badPadding[badPadding.length - 5] = 2;
  refuse(badPadding, /padding/);
  assert.throws(() => encodeGroupData({ ...data, name: "x".repeat(1025) }));
  assert.throws(() => encodeGroupData({ ...data, admins: Array.from({ length: 65 }, () => data.admins[0] as GroupData["ds"]) }));
});

test("leaf proofs: the spec's vector, and refusals", () => {
  const proofs = [{ keyPackageRef: new Uint8Array(32).fill(0xab), rkey: "3jzfcijpj2z2a", proof: hex("cafe") }];
  const bytes = encodeLeafProofs(proofs);
  assert.equal(toHex(bytes), `0132 20${"ab".repeat(32)}0d${toHex(new TextEncoder().encode("3jzfcijpj2z2a"))}02cafe`.replace(/ /g, ""));
  assert.deepEqual(decodeLeafProofs(bytes), proofs);
  assert.throws(() => decodeLeafProofs(Uint8Array.from([2, ...bytes.slice(1)])), /version/);
  assert.throws(() => decodeLeafProofs(Uint8Array.from([...bytes, 0])), /trailing/);
  const longRef = encodeLeafProofs([{ ...proofs[0]!, keyPackageRef: new Uint8Array(64) }]);
  assert.equal(decodeLeafProofs(longRef)[0]?.keyPackageRef.length, 64);
  assert.throws(() => encodeLeafProofs([{ ...proofs[0]!, keyPackageRef: new Uint8Array(65) }]));
});

test("device binding: refusals of §11.16.2", () => {
  const binding = { deviceId: "k5v3mkq2xfa7ltqe", proof: new Uint8Array(40), signature: new Uint8Array(64).fill(7) };
  const bytes = encodeDeviceBinding(binding);
  assert.deepEqual(decodeDeviceBinding(bytes), binding);
  assert.throws(() => decodeDeviceBinding(Uint8Array.from([2, ...bytes.slice(1)])), /version/);
  assert.throws(() => decodeDeviceBinding(Uint8Array.from([...bytes, 0])), /trailing/);
  // The signature vector is `40 40` + 64 bytes; a 63-byte one is refused.
  const shortSig = Uint8Array.from([...bytes.slice(0, bytes.length - 66), 63, ...new Uint8Array(63)]);
  assert.throws(() => decodeDeviceBinding(shortSig), /64 bytes/);
  const emptyId = Uint8Array.from([1, 0, ...bytes.slice(18)]);
  assert.throws(() => decodeDeviceBinding(emptyId), /empty/);
});

test("epoch tag: the spec's vector (§11.17) and the aad forms that carry none", async () => {
  const authenticator = Uint8Array.from({ length: 32 }, (_, i) => i);
  assert.equal(toHex(await epochTag(authenticator)), "ce439bb3fd0525945d301e6442ee291d");
  const aad = await tagAad(authenticator);
  assert.equal(aad.length, 17);
  assert.deepEqual(aadTag(aad), await epochTag(authenticator));
  assert.equal(aadTag(aad.slice(0, 16)), undefined);
  assert.equal(aadTag(new Uint8Array()), undefined);
  assert.equal(aadTag(Uint8Array.from([2, ...aad.slice(1)])), undefined);
});
