// The group scenario of group.test.ts in a browser page (bundled by browser.mjs): create,
// set the mailbox, add (inline and out-of-band tree), messages both ways, rotation, rename,
// removal — ts-mls and the patch under Chromium's WebCrypto. Reports on `window.result`.
import {
  addMembers,
  createGroup,
  epochAuthenticator,
  joinFromWelcome,
  leafAt,
  newSignatureKeyPair,
  receive,
  removeAccounts,
  rotateSignatureKey,
  sendMessage,
  setMailbox,
  toHex,
  updateGroupData,
  groupDataOf,
} from "../../src/mls/index.js";
import type { ClientState } from "ts-mls";
import { World } from "./world.js";

const steps: string[] = [];
function check(what: string, ok: boolean): void {
  if (!ok) throw new Error(`failed: ${what}`);
  steps.push(what);
}

async function joined(world: World, from: ClientState, to: ReturnType<World["device"]>, inline: boolean) {
  const p = await to.publish();
  const c = await addMembers(from, [p.invitee], { ratchetTreeInline: inline });
  if (c.welcome === undefined) throw new Error("no welcome");
  const j = await joinFromWelcome(c.welcome.message, inline ? undefined : c.welcome.ratchetTree, p.built, world.material());
  if (j.kind !== "joined") throw new Error(`join: ${j.kind}`);
  return { commit: c, state: j.state };
}

async function say(world: World, from: ClientState, to: ClientState, text: string) {
  const sent = await sendMessage(from, new TextEncoder().encode(text));
  const got = await receive(to, sent.message, Date.now(), world.material());
  check(`message "${text}" read`, got.kind === "application" && new TextDecoder().decode(got.plaintext) === text);
  if (got.kind !== "application") throw new Error("unreachable");
  return { from: sent.newState, to: got.newState };
}

async function commitTo(world: World, to: ClientState, message: Uint8Array, what: string): Promise<ClientState> {
  const got = await receive(to, message, Date.now(), world.material());
  check(what, got.kind === "commit");
  if (got.kind !== "commit") throw new Error("unreachable");
  return got.newState;
}

async function scenario(): Promise<string[]> {
  const world = new World();
  const alice = world.device("alice");
  const bob = world.device("bob");
  const carol = world.device("carol");
  const created = await createGroup({ device: alice.identity, signatureKey: await alice.key(), ds: "did:web:ds.example.com", name: "tea", now: Date.now() });
  const first = await setMailbox(created.state, new Uint8Array(32).fill(9));
  check("mailbox commit (GroupContextExtensions with a path)", first.newState.groupContext.epoch === 1n);
  const b = await joined(world, first.newState, bob, true);
  check("bob joined with the tree inline", toHex(epochAuthenticator(b.state)) === toHex(epochAuthenticator(b.commit.newState)));
  let m = await say(world, b.commit.newState, b.state, "hello bob");
  m = await say(world, m.to, m.from, "hello alice");
  const c = await joined(world, m.to, carol, false);
  let bobState = await commitTo(world, m.from, c.commit.message, "bob processed carol's add");
  const fresh = await newSignatureKeyPair();
  const rotation = await rotateSignatureKey(c.commit.newState, alice.identity, fresh);
  bobState = await commitTo(world, bobState, rotation.message, "bob processed alice's rotation");
  let carolState = await commitTo(world, c.state, rotation.message, "carol processed alice's rotation");
  check("alice's leaf has the new key", toHex(leafAt(bobState, 0)?.signaturePublicKey ?? new Uint8Array()) === toHex(fresh.publicKey));
  const rename = await updateGroupData(rotation.newState, (d) => ({ ...d, name: "coffee" }));
  bobState = await commitTo(world, bobState, rename.message, "bob processed the rename");
  carolState = await commitTo(world, carolState, rename.message, "carol processed the rename");
  check("renamed everywhere", groupDataOf(bobState).name === "coffee" && groupDataOf(carolState).name === "coffee");
  const s = await say(world, rename.newState, carolState, "signed by the rotated key");
  const removal = await removeAccounts(s.from, [bob.did]);
  const bobRemoved = await receive(bobState, removal.message, Date.now(), world.material());
  check("bob sees his removal", bobRemoved.kind === "commit" && bobRemoved.removed);
  carolState = await commitTo(world, s.to, removal.message, "carol processed bob's removal");
  const after = await sendMessage(removal.newState, new TextEncoder().encode("bob is gone"));
  const bobReads = bobRemoved.kind === "commit" ? await receive(bobRemoved.newState, after.message, Date.now(), world.material()) : undefined;
  check("bob cannot read after his removal", bobReads !== undefined && bobReads.kind !== "application");
  const carolReads = await receive(carolState, after.message, Date.now(), world.material());
  check("carol reads after bob's removal", carolReads.kind === "application");
  return steps;
}

declare global {
  interface Window {
    result?: { ok: true; steps: string[] } | { ok: false; error: string; steps: string[] };
  }
}

scenario().then(
  (s) => {
    window.result = { ok: true, steps: s };
  },
  (e: unknown) => {
    window.result = { ok: false, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e), steps };
  },
);
