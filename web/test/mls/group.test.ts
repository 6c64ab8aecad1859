// ts-mls <-> ts-mls groups through web/src/mls: create, add (leaf proofs, inline and
// out-of-band trees), messages both ways, remove, signature rotation.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  addMembers,
  epochAuthenticator,
  epochOf,
  groupDataOf,
  joinFromWelcome,
  leafAt,
  mailboxKeySeed,
  members,
  newSignatureKeyPair,
  receive,
  removeAccounts,
  rotateSignatureKey,
  sendMessage,
  selfUpdate,
  updateGroupData,
} from "../../src/mls/index.js";
import { World } from "./world.js";
import { accept, add, aliceGroup, say, text } from "./helpers.js";

test("create, add with an inline tree, messages both ways, same epoch secrets", async () => {
  const world = new World();
  const alice = world.device("alice");
  const bob = world.device("bob");
  const g = await aliceGroup(world, alice);
  const { from, to } = await add(world, g, bob);
  assert.equal(epochOf(to), 2n);
  assert.deepEqual(epochAuthenticator(to), epochAuthenticator(from));
  assert.deepEqual(await mailboxKeySeed(to), await mailboxKeySeed(from));
  assert.deepEqual(groupDataOf(to), groupDataOf(from));
  assert.deepEqual(
    members(to).map((m) => [m.did, m.deviceId]),
    [
      [alice.did, alice.identity.deviceId],
      [bob.did, bob.identity.deviceId],
    ],
  );
  const a = await say(world, from, to, "hello bob");
  await say(world, a.to, a.from, "hello alice");
});

test("add with an out-of-band ratchet tree (decision 0016)", async () => {
  const world = new World();
  const alice = world.device("alice");
  const bob = world.device("bob");
  const g = await aliceGroup(world, alice);
  const { from, to } = await add(world, g, bob, false);
  await say(world, from, to, "tree out of band");
  // Without the tree, the same kind of welcome cannot be joined.
  const carol = world.device("carol");
  const published = await carol.publish();
  const commit = await addMembers(from, [published.invitee], { ratchetTreeInline: false });
  assert.ok(commit.welcome);
  const joined = await joinFromWelcome(commit.welcome.message, undefined, published.built, world.material());
  assert.equal(joined.kind, "refused");
});

test("a third member sees every commit; removed member cannot read", async () => {
  const world = new World();
  const alice = world.device("alice");
  const bob = world.device("bob");
  const carol = world.device("carol");
  const g = await aliceGroup(world, alice);
  const ab = await add(world, g, bob);
  // alice adds carol; bob processes the add (leaf proof and binding checked).
  const published = await carol.publish();
  const addCarol = await addMembers(ab.from, [published.invitee], { ratchetTreeInline: true });
  assert.ok(addCarol.welcome);
  const bobNeeds = await receive(ab.to, addCarol.message, Date.now(), world.material([]));
  assert.deepEqual(bobNeeds, { kind: "needsKeys", dids: [carol.did] });
  const bob3 = await accept(world, ab.to, addCarol.message);
  const joined = await joinFromWelcome(addCarol.welcome.message, undefined, published.built, world.material());
  assert.equal(joined.kind, "joined");
  if (joined.kind !== "joined") throw new Error("unreachable");
  let alice3 = addCarol.newState;
  const m = await say(world, joined.state, bob3, "carol here");
  // alice removes bob's account.
  const removal = await removeAccounts(alice3, [bob.did]);
  const bobGot = await receive(m.to, removal.message, Date.now(), world.material());
  assert.equal(bobGot.kind, "commit");
  if (bobGot.kind !== "commit") throw new Error("unreachable");
  assert.equal(bobGot.removed, true);
  const carol4 = await accept(world, m.from, removal.message);
  alice3 = removal.newState;
  assert.deepEqual(members(carol4).map((x) => x.did), [alice.did, carol.did]);
  const after = await sendMessage(alice3, text("bob is gone"));
  const bobReads = await receive(bobGot.newState, after.message, Date.now(), world.material());
  assert.notEqual(bobReads.kind, "application");
  const carolReads = await receive(carol4, after.message, Date.now(), world.material());
  assert.equal(carolReads.kind, "application");
});

test("signature key rotation: receivers see the new key, its binding verifies, messages verify, a later joiner checks it", async () => {
  const world = new World();
  const alice = world.device("alice");
  const bob = world.device("bob");
  const g = await aliceGroup(world, alice);
  const ab = await add(world, g, bob);
  const oldKey = leafAt(ab.to, 0)?.signaturePublicKey;
  const fresh = await newSignatureKeyPair();
  const rotation = await rotateSignatureKey(ab.from, alice.identity, fresh);
  const needs = await receive(ab.to, rotation.message, Date.now(), world.material([]));
  assert.deepEqual(needs, { kind: "needsKeys", dids: [alice.did] }, "a rotation needs the committer's DID document");
  const bob2 = await accept(world, ab.to, rotation.message);
  assert.deepEqual(leafAt(bob2, 0)?.signaturePublicKey, fresh.publicKey);
  assert.notDeepEqual(leafAt(bob2, 0)?.signaturePublicKey, oldKey);
  assert.deepEqual(rotation.newState.signaturePrivateKey, fresh.signKey);
  const m = await say(world, rotation.newState, bob2, "after rotation");
  await say(world, m.to, m.from, "reply");
  // carol joins later and checks alice's rotated leaf against her device record.
  const carol = world.device("carol");
  const c = await add(world, m.from, carol);
  await say(world, c.from, c.to, "carol sees the rotated leaf");
});

test("a self-update and a rename by the admin are accepted", async () => {
  const world = new World();
  const alice = world.device("alice");
  const bob = world.device("bob");
  const g = await aliceGroup(world, alice);
  const ab = await add(world, g, bob);
  const update = await selfUpdate(ab.from);
  const bob2 = await accept(world, ab.to, update.message);
  const rename = await updateGroupData(update.newState, (d) => ({ ...d, name: "coffee" }));
  const bob3 = await accept(world, bob2, rename.message);
  assert.equal(groupDataOf(bob3).name, "coffee");
  assert.deepEqual(epochAuthenticator(bob3), epochAuthenticator(rename.newState));
});
