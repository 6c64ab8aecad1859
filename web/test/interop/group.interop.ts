// A device of this library in a group with a Rust device (openmls), over `atmls serve`
// on loopback: the Rust device creates the group with our device (our KeyPackage, its
// sealed welcome to our inbox), we join from it, read the Rust device's message, send one
// it reads, rotate our leaf signature key in a commit (web/patches) that the Rust device
// accepts — it checks the new leaf's device binding against our repo — and send a message
// signed by the new key that it reads too.
//
// What this test does itself that belongs to other modules of web/ (kept minimal and
// local): the DS calls with §9.4 request tokens, opening the sealed welcome (§11.4), the
// bucket padding (§11.5) and the content object (§5). Its one shortcut: the joiner's key
// material trusts the host's `getRecord` answer for the Rust device's `chat.mls.device`
// record instead of verifying the CAR (§3.3 steps 1–7, the network layer's job); the Rust
// side verifies everything of ours for real.
//
// Run: ATMLS_BIN=/path/to/atmls npm run interop
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ed25519 } from "@noble/curves/ed25519.js";
import * as dagCbor from "@ipld/dag-cbor";
import type { ClientState } from "ts-mls";
import {
  type KeyMaterial,
  buildKeyPackage,
  cipherSuite,
  deviceKeyPublic,
  groupDataOf,
  joinFromWelcome,
  leafAt,
  mailboxKeySeed,
  members,
  newSignatureKeyPair,
  ownLeafIndex,
  receive,
  rotateSignatureKey,
  sendMessage,
  toHex,
} from "../../src/mls/index.js";
import { Host, b64, tid } from "./harness.js";
import { base32, content, fromB64, mailboxAuth, pad, unbase32 } from "./ds.js";

let host: Host;
before(async () => {
  host = await Host.start();
});
after(() => host?.stop());

interface Envelope {
  seq: number;
  kind: string;
  payload: { $bytes: string };
  receivedAt: string;
}

async function envelopes(seed: Uint8Array, mailbox: Uint8Array, cursor: number): Promise<Envelope[]> {
  const query = `mailbox=${base32(mailbox)}&cursor=${cursor}`;
  const res = await host.xrpc("chat.mls.ds.getEnvelopes", { query, authorization: await mailboxAuth(seed, "chat.mls.ds.getEnvelopes", mailbox, query) });
  return ((await res.json()) as { envelopes: Envelope[] }).envelopes;
}

async function send(seed: Uint8Array, mailbox: Uint8Array, envelope: Record<string, unknown>): Promise<void> {
  const raw = JSON.stringify({ mailbox: base32(mailbox), envelopes: [envelope] });
  await host.xrpc("chat.mls.ds.sendEnvelopes", { raw, authorization: await mailboxAuth(seed, "chat.mls.ds.sendEnvelopes", mailbox, raw) });
}



test("a device of this library and a Rust device in one group: join, messages both ways, a rotation openmls accepts", async () => {
  await host.atmls("--profile", "alice", "account", "create", "--pds", host.url, "--handle", "alice.test", "--email", "a@example.com", "--password", "correct horse");
  const account = (await (await host.xrpc("com.atproto.server.createAccount", { body: { handle: "bob.test", email: "b@example.com", password: "battery staple" } })).json()) as {
    did: string;
    accessJwt: string;
  };
  const did = account.did;
  const bearer = `Bearer ${account.accessJwt}`;
  const ds = ((await (await host.xrpc("chat.mls.ds.describeServer")).json()) as { did: string }).did;
  // Our inbox (§9.6.1, service auth from our PDS).
  const inboxSeed = ed25519.utils.randomSecretKey();
  const auth = (await (await host.xrpc("com.atproto.server.getServiceAuth", { authorization: bearer, query: `aud=${encodeURIComponent(ds)}&lxm=chat.mls.ds.createMailbox` })).json()) as { token: string };
  const inbox = ((await (await host.xrpc("chat.mls.ds.createMailbox", { authorization: `Bearer ${auth.token}`, body: { kind: "inbox", key: { $bytes: b64(ed25519.getPublicKey(inboxSeed)) } } })).json()) as { mailbox: string }).mailbox;
  // Declaration, device record, KeyPackage (as in keypackage.interop.ts).
  const put = (collection: string, rkey: string, record: Record<string, unknown>) =>
    host.xrpc("com.atproto.repo.putRecord", { authorization: bearer, body: { repo: did, collection, rkey, record: { $type: collection, ...record } } });
  await put("chat.mls.declaration", "self", { deliveryService: ds, invitePolicy: "anyone", ciphersuites: [1], createdAt: new Date().toISOString() });
  const deviceId = "tsmls0device0web";
  const deviceSeed = ed25519.utils.randomSecretKey();
  await put("chat.mls.device", deviceId, { deviceId, deviceKey: { $bytes: b64(deviceKeyPublic(deviceSeed)) }, createdAt: new Date().toISOString() });
  const car = new Uint8Array(await (await host.xrpc("com.atproto.sync.getRecord", { query: `did=${did}&collection=chat.mls.device&rkey=${deviceId}` })).arrayBuffer());
  const device = { did, deviceId, deviceKeySeed: deviceSeed, deviceRecordProof: car };
  const built = await buildKeyPackage({ device, signatureKey: await newSignatureKeyPair(), lastResort: true, now: Date.now() });
  await put("chat.mls.keyPackage", tid(1), {
    keyPackage: { $bytes: b64(built.message) },
    keyPackageRef: { $bytes: b64(built.keyPackageRef) },
    ciphersuite: 1,
    deviceId,
    inbox: { service: ds, mailbox: inbox },
    lastResort: true,
    createdAt: new Date(built.createdAt).toISOString(),
    expiresAt: new Date(built.expiresAt).toISOString(),
  });

  // The Rust device creates the group with us: a commit adding our KeyPackage, a sealed welcome.
  await host.atmls("--profile", "alice", "group", "--json", "create", "tea", "--with", "bob.test");
  const inboxId = unbase32(inbox);
  const listQuery = `inbox=${inbox}`;
  const items = ((await (await host.xrpc("chat.mls.ds.listInbox", { query: listQuery, authorization: await mailboxAuth(inboxSeed, "chat.mls.ds.listInbox", inboxId, listQuery) })).json()) as { items: Envelope[] }).items;
  assert.equal(items.length, 1, "one welcome in our inbox");
  const sealed = fromB64(items[0]?.payload.$bytes ?? "");
  // §11.4 sealed payload: 0x01 || u16 len(enc) || enc || u32 len(ct) || ct || zeros.
  assert.equal(sealed[0], 1);
  const view = new DataView(sealed.buffer, sealed.byteOffset);
  const encLen = view.getUint16(1);
  const enc = sealed.slice(3, 3 + encLen);
  const ctLen = view.getUint32(3 + encLen);
  const ct = sealed.slice(7 + encLen, 7 + encLen + ctLen);
  assert.ok(sealed.slice(7 + encLen + ctLen).every((b) => b === 0));
  const cs = await cipherSuite();
  const plaintext = await cs.hpke.open(await cs.hpke.importPrivateKey(built.privatePackage.initPrivateKey), enc, ct, new TextEncoder().encode("chat.mls welcome v1"), new Uint8Array());
  const welcome = dagCbor.decode(plaintext) as { ds: string; fromSeq: number; mailbox: string; version: number; welcome: Uint8Array; ratchetTree?: unknown };
  assert.equal(welcome.version, 1);
  assert.equal(welcome.ratchetTree, undefined, "a small group's welcome carries the tree inline");

  // Join: openmls's Welcome and tree, the Rust leaf's binding checked (material: see header).
  const aliceDid = (JSON.parse(await host.atmls("--profile", "alice", "keys", "--json", "list")) as { account: string }).account;
  const material: KeyMaterial<string> = {
    keys: new Map([[aliceDid, { kind: "key", key: "host" }]]),
    verifyRecord: async ({ did: who, collection, rkey }) => {
      const res = await host.xrpc("com.atproto.repo.getRecord", { query: `repo=${who}&collection=${collection}&rkey=${rkey}` });
      const value = ((await res.json()) as { value: Record<string, unknown> }).value;
      const record = Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, typeof v === "object" && v !== null && "$bytes" in v ? fromB64(String((v as { $bytes: string }).$bytes)) : v]),
      );
      return { kind: "present", record };
    },
  };
  const joined = await joinFromWelcome(welcome.welcome, undefined, built, material);
  assert.equal(joined.kind, "joined", JSON.stringify(joined.kind === "refused" ? joined.reason : joined.kind));
  if (joined.kind !== "joined") throw new Error("unreachable");
  let state: ClientState = joined.state;
  const mailbox = groupDataOf(state).mailbox;
  assert.equal(base32(mailbox), welcome.mailbox);
  assert.equal(groupDataOf(state).ds, welcome.ds);
  assert.deepEqual(members(state).map((m) => m.did).sort(), [aliceDid, did].sort());
  const info = JSON.parse(await host.atmls("--profile", "alice", "group", "--json", "info", "tea")) as { epochAuthenticator: string; epoch: number };
  assert.equal(toHex(state.keySchedule.epochAuthenticator), info.epochAuthenticator, "same epoch authenticator as the Rust device");

  let cursor = welcome.fromSeq - 1;
  const own = new Set<string>();
  const read = async (): Promise<string[]> => {
    const texts: string[] = [];
    for (const e of await envelopes(await mailboxKeySeed(state), mailbox, cursor)) {
      cursor = e.seq;
      // Our own envelopes come back: recognised by their payload (§11.8) and skipped.
      if (own.has(toHex(fromB64(e.payload.$bytes)))) continue;
      const got = await receive(state, fromB64(e.payload.$bytes), Date.parse(e.receivedAt), material);
      if (got.kind === "application") {
        state = got.newState;
        texts.push((dagCbor.decode(got.plaintext) as { body: { text: string } }).body.text);
      } else if (got.kind === "commit") state = got.newState;
      else throw new Error(`envelope ${e.seq}: ${got.kind}`);
    }
    return texts;
  };

  // Rust -> us.
  await host.atmls("--profile", "alice", "send", "tea", "hello from openmls");
  assert.deepEqual(await read(), ["hello from openmls"]);

  // Us -> Rust.
  const say = async (text: string) => {
    const sent = await sendMessage(state, content(text));
    const payload = pad(sent.message);
    own.add(toHex(payload));
    await send(await mailboxKeySeed(state), mailbox, { kind: "message", payload: { $bytes: b64(payload) } });
    state = sent.newState;
  };
  await say("hello from ts-mls");
  const inboxOut = await host.atmls("--profile", "alice", "inbox", "--json");
  assert.match(inboxOut, /hello from ts-mls/);

  // Our leaf signature key rotates in a commit (the patched ts-mls); the Rust device merges it.
  const oldKey = leafAt(state, ownLeafIndex(state))?.signaturePublicKey;
  const fresh = await newSignatureKeyPair();
  const rotation = await rotateSignatureKey(state, device, fresh);
  const commitPayload = pad(rotation.message);
  own.add(toHex(commitPayload));
  await send(await mailboxKeySeed(state), mailbox, {
    kind: "commit",
    epoch: Number(rotation.epoch),
    payload: { $bytes: b64(commitPayload) },
    nextKey: { $bytes: b64(ed25519.getPublicKey(rotation.nextMailboxSeed)) },
  });
  state = rotation.newState;
  assert.notDeepEqual(leafAt(state, ownLeafIndex(state))?.signaturePublicKey, oldKey);
  await say("signed by my new key");
  const afterRotation = await host.atmls("--profile", "alice", "inbox", "--json");
  assert.match(afterRotation, /signed by my new key/);
  const info2 = JSON.parse(await host.atmls("--profile", "alice", "group", "--json", "info", "tea")) as { epochAuthenticator: string; epoch: number; broken: unknown };
  assert.equal(info2.broken, null, "the Rust device is not broken");
  assert.equal(info2.epochAuthenticator, toHex(state.keySchedule.epochAuthenticator), "the Rust device merged the rotation");

  // And the Rust device's next message reaches us in the new epoch.
  await host.atmls("--profile", "alice", "send", "tea", "after your rotation");
  assert.deepEqual(await read(), ["after your rotation"]);
});
