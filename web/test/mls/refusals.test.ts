// Commits and messages that members must refuse (docs/spec.md §11.2, §11.13, §11.16,
// §11.17), each built so that only the checked thing is wrong.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ed25519 } from "@noble/curves/ed25519.js";
import { type ClientState, type Proposal, createCommit, encodeMlsMessage, generateKeyPackageWithKey } from "ts-mls";
import {
  NotAllowed,
  SUITE_ID,
  addMembers,
  cipherSuite,
  deviceBindingExtension,
  epochOf,
  leafCapabilities,
  leafProofsProposal,
  mlsLifetime,
  proposeLeave,
  receive,
  selfUpdate,
  sendMessage,
  signBinding,
  updateGroupData,
  utf8Bytes,
  vector,
} from "../../src/mls/index.js";
import { makeKeyPackageRef } from "ts-mls/keyPackage.js";
import { accept, add, aliceGroup, say, show } from "./helpers.js";
import { World } from "./world.js";

/** alice (admin) and bob in a group at epoch 2. */
async function twoMembers() {
  const world = new World();
  const alice = world.device("alice");
  const bob = world.device("bob");
  const ab = await add(world, await aliceGroup(world, alice), bob);
  return { world, alice, bob, a: ab.from, b: ab.to };
}

async function refused(world: World, state: ClientState, message: Uint8Array, kind: string, detail?: RegExp) {
  const got = await receive(state, message, Date.now(), world.material());
  assert.equal(got.kind, "refused", show(got));
  if (got.kind !== "refused") throw new Error("unreachable");
  assert.equal(got.violation.kind, kind, show(got));
  if (detail !== undefined) assert.match(show(got.violation), detail);
}

test("an added leaf whose binding is signed by another key is refused", async () => {
  const { world, a, b } = await twoMembers();
  const carol = world.device("carol");
  const wrongKey = { ...carol.identity, deviceKeySeed: ed25519.utils.randomSecretKey() };
  const published = await carol.publish({ identity: wrongKey });
  const commit = await addMembers(a, [published.invitee], { ratchetTreeInline: true });
  await refused(world, b, commit.message, "DeviceBinding", /BadSignature/);
  // The same add with the right key is accepted (the check is what refused it).
  const good = await carol.publish();
  const ok = await addMembers(a, [good.invitee], { ratchetTreeInline: true });
  await accept(world, b, ok.message);
});

test("an added leaf without a binding, or of a device with no record, is refused", async () => {
  const { world, a, b } = await twoMembers();
  const carol = world.device("carol");
  const cs = await cipherSuite();
  const key = await carol.key();
  const now = Math.floor(Date.now() / 1000);
  // A KeyPackage with atmls's capabilities but no 0xF0A9 extension.
  const bare = await generateKeyPackageWithKey(
    { credentialType: "basic", identity: utf8Bytes(carol.did) },
    leafCapabilities(),
    mlsLifetime(now, 30 * 86400),
    [],
    key,
    cs,
    [{ extensionType: "application_id", extensionData: vector(utf8Bytes(carol.identity.deviceId)) }],
  );
  const message = encodeMlsMessage({ version: "mls10", wireformat: "mls_key_package", keyPackage: bare.publicPackage });
  const ref = await makeKeyPackageRef(bare.publicPackage, cs.hash);
  world.records.set(`${carol.did}/chat.mls.keyPackage/3kbare`, {
    $type: "chat.mls.keyPackage",
    keyPackage: message,
    keyPackageRef: ref,
    ciphersuite: SUITE_ID,
    expiresAt: new Date(Date.now() + 86400_000).toISOString(),
  });
  const invitee = { keyPackage: bare.publicPackage, keyPackageRef: ref, rkey: "3kbare", proof: world.proof(carol.did, "chat.mls.keyPackage", "3kbare") };
  const commit = await addMembers(a, [invitee], { ratchetTreeInline: true });
  await refused(world, b, commit.message, "DeviceBinding", /Missing/);
  // A binding naming a device whose record the account does not have.
  const ghost = { ...carol.identity, deviceId: "ghostdevice00000", deviceRecordProof: world.proof(carol.did, "chat.mls.device", "ghostdevice00000") };
  const published = await carol.publish({ identity: ghost });
  const ghostAdd = await addMembers(a, [published.invitee], { ratchetTreeInline: true });
  await refused(world, b, ghostAdd.message, "DeviceBinding", /Absent/);
});

test("a rotation whose new leaf's binding does not verify is refused", async () => {
  const { world, alice, a, b } = await twoMembers();
  const fresh = await (await cipherSuite()).signature.keygen();
  const forged = { ...alice.identity, deviceKeySeed: ed25519.utils.randomSecretKey() };
  const cs = await cipherSuite();
  const built = await createCommit(
    { state: a, cipherSuite: cs },
    {
      updatePathLeaf: {
        signatureKeyPair: fresh,
        extensions: [
          { extensionType: "application_id", extensionData: vector(utf8Bytes(alice.identity.deviceId)) },
          deviceBindingExtension(signBinding(forged, SUITE_ID, fresh.publicKey)),
        ],
      },
    },
  );
  await refused(world, b, encodeMlsMessage(built.commit), "DeviceBinding", /BadSignature/);
});

test("a PublicMessage commit is refused", async () => {
  const { world, a, b } = await twoMembers();
  const built = await createCommit({ state: a, cipherSuite: await cipherSuite() }, { wireAsPublicMessage: true });
  await refused(world, b, encodeMlsMessage(built.commit), "PublicMessage");
  // The same commit as a PrivateMessage is accepted.
  await accept(world, b, (await selfUpdate(a)).message);
});

test("an add without leaf proofs, or with the proof of another record, is refused", async () => {
  const { world, a, b } = await twoMembers();
  const carol = world.device("carol");
  const published = await carol.publish();
  const cs = await cipherSuite();
  const bare = await createCommit(
    { state: a, cipherSuite: cs },
    { extraProposals: [{ proposalType: "add", add: { keyPackage: published.invitee.keyPackage } }] },
  );
  await refused(world, b, encodeMlsMessage(bare.commit), "LeafProofs");
  const other = await carol.publish();
  const swapped = { ...published.invitee, rkey: other.invitee.rkey, proof: other.invitee.proof };
  const wrong = await addMembers(a, [swapped], { ratchetTreeInline: true });
  await refused(world, b, wrong.message, "LeafProofRefused", /NotAdded/);
  // A proof from another account's repo.
  const forged = { ...published.invitee, proof: world.proof("did:plc:someoneelseaaaaaaaaaaaaa", "chat.mls.keyPackage", published.invitee.rkey) };
  const forgedAdd = await addMembers(a, [forged], { ratchetTreeInline: true });
  await refused(world, b, forgedAdd.message, "LeafProofRefused", /Proof/);
});

test("a non-admin may add its own devices but not others, nor change the group data", async () => {
  const { world, bob, a, b } = await twoMembers();
  const carol = world.device("carol");
  const published = await carol.publish();
  await assert.rejects(addMembers(b, [published.invitee], { ratchetTreeInline: true }), NotAllowed);
  // Built without the committer-side check, it is refused by the admin.
  const cs = await cipherSuite();
  const proposals: Proposal[] = [
    { proposalType: "add", add: { keyPackage: published.invitee.keyPackage } },
    leafProofsProposal([{ keyPackageRef: published.invitee.keyPackageRef, rkey: published.invitee.rkey, proof: published.invitee.proof }]),
  ];
  const sneaky = await createCommit({ state: b, cipherSuite: cs }, { extraProposals: proposals });
  await refused(world, a, encodeMlsMessage(sneaky.commit), "NotAdmin");
  await assert.rejects(updateGroupData(b, (d) => ({ ...d, name: "mine" })), NotAllowed);
  // bob's second device is his own: allowed.
  const bobPhone = world.anotherDevice(bob, "bobphone00000000");
  const phone = await bobPhone.publish();
  const own = await addMembers(b, [phone.invitee], { ratchetTreeInline: true });
  await accept(world, a, own.message);
});

test("the mailbox and the DS of a group never change", async () => {
  const { world, a, b } = await twoMembers();
  const move = await createCommit(
    { state: a, cipherSuite: await cipherSuite() },
    {
      extraProposals: [
        {
          proposalType: "group_context_extensions",
          groupContextExtensions: {
            extensions: a.groupContext.extensions.map((e) =>
              e.extensionType === 0xf0a7 ? { ...e, extensionData: e.extensionData.map((x, i) => (i === 30 ? x ^ 1 : x)) } : e,
            ),
          },
        },
      ],
    },
  );
  await refused(world, b, encodeMlsMessage(move.commit), "MailboxChange");
});

test("a member's own leave is kept for the admin; other standalone proposals are refused", async () => {
  const { world, a, b } = await twoMembers();
  const leave = await proposeLeave(b);
  const got = await receive(a, leave.message, Date.now(), world.material());
  assert.equal(got.kind, "proposal", show(got));
  if (got.kind !== "proposal") throw new Error("unreachable");
  // The admin's next commit carries it by reference; bob, removed, sees it.
  const commit = await selfUpdate(got.newState);
  const bobGot = await receive(leave.newState, commit.message, Date.now(), world.material());
  assert.equal(bobGot.kind, "commit", show(bobGot));
  if (bobGot.kind === "commit") assert.equal(bobGot.removed, true);
  const { createProposal } = await import("ts-mls");
  const other = await createProposal(a, false, { proposalType: "remove", remove: { removed: 1 } }, await cipherSuite());
  await refused(world, b, encodeMlsMessage(other.message), "UnsupportedProposal");
});

test("epoch tags: a fork at the same epoch is detected; a tag that matches is a plain refusal", async () => {
  const { world, a, b } = await twoMembers();
  // Two different commits on epoch 2: alice keeps one, bob the other.
  const mine = await selfUpdate(a);
  const theirs = await selfUpdate(a);
  const bobForked = await accept(world, b, theirs.message);
  assert.equal(epochOf(bobForked), epochOf(mine.newState));
  const sent = await sendMessage(mine.newState, new TextEncoder().encode("from the other branch"));
  const got = await receive(bobForked, sent.message, Date.now(), world.material());
  assert.equal(got.kind, "forked", show(got));
  // On the same branch, a message that does not decrypt but carries the right tag is not a fork.
  const same = await sendMessage(theirs.newState, new TextEncoder().encode("same branch"));
  const corrupt = same.message.slice();
  corrupt[corrupt.length - 5] = (corrupt[corrupt.length - 5] ?? 0) ^ 0xff;
  const plain = await receive(bobForked, corrupt, Date.now(), world.material());
  assert.equal(plain.kind, "refused", show(plain));
  await say(world, theirs.newState, bobForked, "same branch reads");
});

test("a message of a later epoch is Behind; a commit of a past epoch is stale", async () => {
  const { world, a, b } = await twoMembers();
  const next = await selfUpdate(a);
  const later = await sendMessage(next.newState, new TextEncoder().encode("later"));
  assert.equal((await receive(b, later.message, Date.now(), world.material())).kind, "behind");
  const b3 = await accept(world, b, next.message);
  assert.equal((await receive(b3, next.message, Date.now(), world.material())).kind, "stale");
});

test("a welcome into a group with a member whose binding fails is refused, then nothing is joined", async () => {
  const { world, a } = await twoMembers();
  const carol = world.device("carol");
  const badCarol = await carol.publish({ identity: { ...carol.identity, deviceKeySeed: ed25519.utils.randomSecretKey() } });
  const withCarol = await addMembers(a, [badCarol.invitee], { ratchetTreeInline: true });
  const dave = world.device("dave");
  const published = await dave.publish();
  const addDave = await addMembers(withCarol.newState, [published.invitee], { ratchetTreeInline: true });
  assert.ok(addDave.welcome);
  const { joinFromWelcome } = await import("../../src/mls/index.js");
  const joined = await joinFromWelcome(addDave.welcome.message, undefined, published.built, world.material());
  assert.equal(joined.kind, "refused", show(joined));
  if (joined.kind === "refused") assert.match(joined.reason, /leaf 2: BadSignature/);
});

test("an added KeyPackage whose record expired before acceptedAt is refused; the same commit accepted earlier is not", async () => {
  const { world, a, b } = await twoMembers();
  const carol = world.device("carol");
  const published = await carol.publish();
  const commit = await addMembers(a, [published.invitee], { ratchetTreeInline: true });
  const after = published.built.expiresAt + 1;
  const late = await receive(b, commit.message, after, world.material());
  assert.equal(late.kind, "refused", show(late));
  if (late.kind === "refused") assert.match(show(late.violation), /Expired/);
  const inTime = await receive(b, commit.message, published.built.expiresAt - 1, world.material());
  assert.equal(inTime.kind, "commit", show(inTime));
});
