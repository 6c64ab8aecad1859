// Tests of web/patches/ts-mls+1.6.4.patch through ts-mls's own API, without atmls's layer:
// each fails on the unpatched package (see the report of the change that added them).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  type CiphersuiteImpl,
  type ClientState,
  type KeyPackage,
  type MLSMessage,
  type PrivateKeyPackage,
  createApplicationMessage,
  createCommit,
  createGroup,
  emptyPskIndex,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  processPrivateMessage,
  defaultLifetime,
} from "ts-mls";

const SUITE = "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519" as const;

async function suite(): Promise<CiphersuiteImpl> {
  return getCiphersuiteImpl(getCiphersuiteFromName(SUITE));
}

async function member(cs: CiphersuiteImpl, name: string): Promise<{ publicPackage: KeyPackage; privatePackage: PrivateKeyPackage }> {
  return generateKeyPackage(
    { credentialType: "basic", identity: new TextEncoder().encode(name) },
    { versions: ["mls10"], ciphersuites: [SUITE], extensions: [0xf0a7, 0xf0a9], proposals: [], credentials: ["basic"] },
    defaultLifetime,
    [],
    cs,
  );
}

function privateMessage(m: MLSMessage) {
  if (m.wireformat !== "mls_private_message") throw new Error("expected a PrivateMessage");
  return m.privateMessage;
}

/** alice creates a group and adds bob; both states at epoch 1. */
async function pair(cs: CiphersuiteImpl): Promise<{ alice: ClientState; bob: ClientState }> {
  const a = await member(cs, "alice");
  const b = await member(cs, "bob");
  const created = await createGroup(new Uint8Array(32).fill(7), a.publicPackage, a.privatePackage, [], cs);
  const add = await createCommit(
    { state: created, cipherSuite: cs },
    { extraProposals: [{ proposalType: "add", add: { keyPackage: b.publicPackage } }], ratchetTreeExtension: true },
  );
  assert.ok(add.welcome);
  const bob = await joinGroup(add.welcome, b.publicPackage, b.privatePackage, emptyPskIndex, cs);
  return { alice: add.newState, bob };
}

function leaf(state: ClientState, index: number) {
  const node = state.ratchetTree[index * 2];
  if (node === undefined || node.nodeType !== "leaf") throw new Error(`no leaf ${index}`);
  return node.leaf;
}

async function exchange(cs: CiphersuiteImpl, from: ClientState, to: ClientState, text: string) {
  const sent = await createApplicationMessage(from, new TextEncoder().encode(text), cs);
  const got = await processPrivateMessage(to, sent.privateMessage, emptyPskIndex, cs);
  assert.equal(got.kind, "applicationMessage");
  if (got.kind !== "applicationMessage") throw new Error("unreachable");
  assert.equal(new TextDecoder().decode(got.message), text);
  return { from: sent.newState, to: got.newState };
}

test("a GroupContextExtensions-only commit carries an update path, encrypted under the new context", async () => {
  const cs = await suite();
  const { alice, bob } = await pair(cs);
  const before = leaf(bob, 0).hpkePublicKey;
  const gce = await createCommit(
    { state: alice, cipherSuite: cs },
    {
      extraProposals: [
        {
          proposalType: "group_context_extensions",
          groupContextExtensions: { extensions: [{ extensionType: 0xf0a7, extensionData: new Uint8Array([1, 2, 3]) }] },
        },
      ],
    },
  );
  // RFC 9420 §12.4: GroupContextExtensions requires a path, so alice's leaf gets a new key.
  assert.notDeepEqual(leaf(gce.newState, 0).hpkePublicKey, before, "the committer's leaf was not renewed: no path");
  const processed = await processPrivateMessage(bob, privateMessage(gce.commit), emptyPskIndex, cs);
  assert.equal(processed.kind, "newState");
  const bob2 = processed.newState;
  assert.notDeepEqual(leaf(bob2, 0).hpkePublicKey, before);
  assert.deepEqual(bob2.groupContext.extensions, gce.newState.groupContext.extensions);
  assert.deepEqual(bob2.keySchedule.epochAuthenticator, gce.newState.keySchedule.epochAuthenticator);
  await exchange(cs, gce.newState, bob2, "after the rename");
});

test("a receiver refuses a GroupContextExtensions-only commit without a path", async () => {
  // The receiver's side of the same rule (RFC 9420 §12.4): its verdict on a commit
  // holding only a GroupContextExtensions proposal is that a path is required.
  const cs = await suite();
  const { alice, bob } = await pair(cs);
  const { applyProposals } = await import("ts-mls/clientState.js");
  const res = await applyProposals(
    bob,
    [
      {
        proposalOrRefType: "proposal",
        proposal: {
          proposalType: "group_context_extensions",
          groupContextExtensions: { extensions: [{ extensionType: 0xf0a7, extensionData: new Uint8Array([9]) }] },
        },
      },
    ],
    alice.privatePath.leafIndex as never,
    emptyPskIndex,
    false,
    cs,
  );
  assert.equal(res.needsUpdatePath, true);
});

test("a commit rotates the committer's leaf signature key; receivers and later joiners verify the new key", async () => {
  const cs = await suite();
  const { alice, bob } = await pair(cs);
  const oldKey = leaf(bob, 0).signaturePublicKey;
  const fresh = await cs.signature.keygen();
  const marker = { extensionType: 0xf0a9, extensionData: new Uint8Array([0xaa]) };
  const rotation = await createCommit(
    { state: alice, cipherSuite: cs },
    { updatePathLeaf: { signatureKeyPair: fresh, extensions: [marker] } },
  );
  assert.deepEqual(rotation.newState.signaturePrivateKey, fresh.signKey, "the committer's state keeps the old private key");
  assert.deepEqual(leaf(rotation.newState, 0).signaturePublicKey, fresh.publicKey);
  const processed = await processPrivateMessage(bob, privateMessage(rotation.commit), emptyPskIndex, cs);
  assert.equal(processed.kind, "newState");
  const bob2 = processed.newState;
  assert.deepEqual(leaf(bob2, 0).signaturePublicKey, fresh.publicKey, "the receiver's tree has the old key");
  assert.notDeepEqual(leaf(bob2, 0).signaturePublicKey, oldKey);
  assert.deepEqual(leaf(bob2, 0).extensions, [marker]);
  // Messages after the rotation are signed by the new key and verify at bob (and back).
  const m = await exchange(cs, rotation.newState, bob2, "signed by the new key");
  await exchange(cs, m.to, m.from, "and back");
  // A joiner added by alice after the rotation verifies her GroupInfo against the new key.
  const c = await member(cs, "carol");
  const add = await createCommit(
    { state: m.from, cipherSuite: cs },
    { extraProposals: [{ proposalType: "add", add: { keyPackage: c.publicPackage } }], ratchetTreeExtension: true },
  );
  assert.ok(add.welcome);
  const carol = await joinGroup(add.welcome, c.publicPackage, c.privatePackage, emptyPskIndex, cs);
  assert.deepEqual(leaf(carol, 0).signaturePublicKey, fresh.publicKey);
});

test("a rotation and an Add in one commit: the Welcome's GroupInfo is signed by the new key", async () => {
  const cs = await suite();
  const { alice } = await pair(cs);
  const fresh = await cs.signature.keygen();
  const c = await member(cs, "carol");
  const commit = await createCommit(
    { state: alice, cipherSuite: cs },
    {
      extraProposals: [{ proposalType: "add", add: { keyPackage: c.publicPackage } }],
      ratchetTreeExtension: true,
      updatePathLeaf: { signatureKeyPair: fresh },
    },
  );
  assert.ok(commit.welcome);
  const carol = await joinGroup(commit.welcome, c.publicPackage, c.privatePackage, emptyPskIndex, cs);
  assert.deepEqual(leaf(carol, 0).signaturePublicKey, fresh.publicKey);
  await exchange(cs, commit.newState, carol, "hello carol");
});
