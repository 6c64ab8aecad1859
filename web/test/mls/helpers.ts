// Steps shared by the group tests: alice's group at epoch 1, adding a device (with the
// joiner's checks), a message one way, a commit that must be accepted.
import assert from "node:assert/strict";
import type { ClientState } from "ts-mls";
import {
  addMembers,
  createGroup,
  epochOf,
  groupDataOf,
  joinFromWelcome,
  mailboxKeySeed,
  receive,
  sendMessage,
  setMailbox,
} from "../../src/mls/index.js";
import type { Device, World } from "./world.js";

const DS = "did:web:ds.example.com";
export const text = (s: string) => new TextEncoder().encode(s);
/** A verdict for an assertion message (states left out). */
export const show = (x: unknown) =>
  JSON.stringify(x, (k, v: unknown) => (k === "newState" || k === "state" ? undefined : typeof v === "bigint" ? String(v) : v));

/** alice creates a group and sets its mailbox: epoch 1. */
export async function aliceGroup(world: World, alice: Device): Promise<ClientState> {
  const created = await createGroup({ device: alice.identity, signatureKey: await alice.key(), ds: DS, name: "tea", now: Date.now() });
  assert.equal(epochOf(created.state), 0n);
  assert.deepEqual(groupDataOf(created.state).mailbox, new Uint8Array(32));
  const mailbox = new Uint8Array(32).fill(0x5a);
  const first = await setMailbox(created.state, mailbox);
  assert.equal(first.epoch, 0n);
  assert.equal(epochOf(first.newState), 1n);
  assert.deepEqual(groupDataOf(first.newState).mailbox, mailbox);
  assert.notDeepEqual(first.nextMailboxSeed, created.mailboxSeed);
  assert.deepEqual(first.nextMailboxSeed, await mailboxKeySeed(first.newState));
  return first.newState;
}

/** `from` adds `to`'s device; `to` joins; returns both new states. */
export async function add(world: World, from: ClientState, to: Device, inline = true): Promise<{ from: ClientState; to: ClientState }> {
  const published = await to.publish();
  const commit = await addMembers(from, [published.invitee], { ratchetTreeInline: inline });
  assert.ok(commit.welcome);
  assert.equal(commit.welcome.ratchetTreeInline, inline);
  const tree = inline ? undefined : commit.welcome.ratchetTree;
  const first = await joinFromWelcome(commit.welcome.message, tree, published.built, world.material([]));
  assert.equal(first.kind, "needsKeys");
  const joined = await joinFromWelcome(commit.welcome.message, tree, published.built, world.material());
  assert.equal(joined.kind, "joined", show(joined));
  if (joined.kind !== "joined") throw new Error("unreachable");
  return { from: commit.newState, to: joined.state };
}

/** `from` sends `what` and `to` reads it; returns both new states. */
export async function say(world: World, from: ClientState, to: ClientState, what: string): Promise<{ from: ClientState; to: ClientState }> {
  const sent = await sendMessage(from, text(what));
  const got = await receive(to, sent.message, Date.now(), world.material([]));
  assert.equal(got.kind, "application", show(got));
  if (got.kind !== "application") throw new Error("unreachable");
  assert.equal(new TextDecoder().decode(got.plaintext), what);
  assert.equal(got.sender, from.privatePath.leafIndex);
  return { from: sent.newState, to: got.newState };
}

/** `to` processes a commit payload that must be accepted. */
export async function accept(world: World, to: ClientState, message: Uint8Array): Promise<ClientState> {
  const got = await receive(to, message, Date.now(), world.material());
  assert.equal(got.kind, "commit", show(got));
  if (got.kind !== "commit") throw new Error("unreachable");
  return got.newState;
}

