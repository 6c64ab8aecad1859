// Sealed welcomes and re-entry requests a recipient must refuse (docs/spec.md §11.4, §11.17).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as dagCbor from "@ipld/dag-cbor";
import { ed25519 } from "@noble/curves/ed25519.js";
import { parseMailboxId } from "../../src/proto/mailbox-id.js";
import { pad } from "../../src/proto/padding.js";
import { openReentry, sealReentry, signReentry, verifyReentry } from "../../src/proto/reentry.js";
import { hpkeOf } from "../../src/proto/sealed.js";
import { WelcomeError, decodeWelcomePlaintext, openWelcome, sealWelcome, sealedWelcomeLengthBound } from "../../src/proto/welcome.js";

const mailbox = parseMailboxId("a".repeat(52));
const plaintext = { ds: "did:web:ds.example.com", fromSeq: 7, mailbox, welcome: Uint8Array.of(0xde, 0xad) };

async function keyPair(): Promise<{ pub: Uint8Array; priv: Uint8Array }> {
  const hpke = hpkeOf(1);
  const kp = await hpke.kem.generateKeyPair();
  return {
    pub: new Uint8Array(await hpke.kem.serializePublicKey(kp.publicKey)),
    priv: new Uint8Array(await hpke.kem.serializePrivateKey(kp.privateKey)),
  };
}

test("a welcome opens with the right init key only, and only with zero padding and kind 0x01", async () => {
  const right = await keyPair();
  const wrong = await keyPair();
  const payload = pad(await sealWelcome(plaintext, 1, right.pub));
  assert.deepEqual(await openWelcome(payload, [{ suite: 1, privateKey: wrong.priv }, { suite: 1, privateKey: right.priv }]), plaintext);
  await assert.rejects(openWelcome(payload, [{ suite: 1, privateKey: wrong.priv }]), WelcomeError);
  const dirty = Uint8Array.from(payload);
  dirty[dirty.length - 1] = 1;
  await assert.rejects(openWelcome(dirty, [{ suite: 1, privateKey: right.priv }]), /padding/);
  const otherKind = Uint8Array.from(payload);
  otherKind[0] = 2;
  await assert.rejects(openWelcome(otherKind, [{ suite: 1, privateKey: right.priv }]), /kind/);
});

test("a welcome plaintext with another version or an unknown key is refused", () => {
  const base = { ds: plaintext.ds, fromSeq: 7, mailbox, version: 1, welcome: plaintext.welcome };
  assert.deepEqual(decodeWelcomePlaintext(dagCbor.encode(base)), plaintext);
  assert.throws(() => decodeWelcomePlaintext(dagCbor.encode({ ...base, version: 2 })), /version/);
  assert.throws(() => decodeWelcomePlaintext(dagCbor.encode({ ...base, extra: 1 })), /unknown key/);
  assert.throws(() => decodeWelcomePlaintext(dagCbor.encode({ ...base, fromSeq: 0 })), WelcomeError);
});

test("a re-entry request round-trips; its signature fails under another key or changed", async () => {
  const r = await keyPair();
  const seed = new Uint8Array(32).fill(5);
  const req = signReentry({ did: "did:plc:x", deviceId: "device01", createdAt: 1, keyPackage: "3jzfcijpj2z2a", keyPackageRef: new Uint8Array(32) }, seed);
  const opened = await openReentry(pad(await sealReentry(req, 1, r.pub)), [{ suite: 1, privateKey: r.priv }]);
  assert.deepEqual(opened, req);
  assert.equal(verifyReentry(opened, ed25519.getPublicKey(seed)), true);
  assert.equal(verifyReentry(opened, ed25519.getPublicKey(new Uint8Array(32).fill(6))), false);
  assert.equal(verifyReentry({ ...opened, createdAt: 2 }, ed25519.getPublicKey(seed)), false);
});

test("the §11.4 length bound holds for suite 0x0001 and falls short for X-Wing's encapsulation", async () => {
  const big = { ...plaintext, fromSeq: Number.MAX_SAFE_INTEGER, welcome: new Uint8Array(5000) };
  const r = await keyPair();
  const sealed = await sealWelcome(big, 1, r.pub);
  assert.ok(sealed.length <= sealedWelcomeLengthBound(big), `${sealed.length} > bound`);
  const xwing = hpkeOf(0x4d);
  const kp = await xwing.kem.generateKeyPair();
  const xpub = new Uint8Array(await xwing.kem.serializePublicKey(kp.publicKey));
  const xsealed = await sealWelcome(big, 0x4d, xpub);
  assert.ok(xsealed.length > sealedWelcomeLengthBound(big), "X-Wing now fits the bound: update spec §11.4 and this test");
});
