// A device of this library creates a group and adds a Rust device (openmls), over
// `atmls serve` on loopback: the epoch-0 mailbox and the first (GroupContextExtensions)
// commit, an Add with its leaf proof, a Welcome sealed to the Rust device's inbox that it
// joins (checking our leaf's device binding and the proof for real), messages both ways,
// and a rename — a GroupContextExtensions-only commit, which openmls accepts only with the
// update path of web/patches.
//
// As in group.interop.ts, the DS calls are made here (ds.ts) and our key material trusts
// the host's `getRecord` for the Rust device's records instead of verifying CARs.
//
// Run: ATMLS_BIN=/path/to/atmls npm run interop
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ed25519 } from "@noble/curves/ed25519.js";
import * as dagCbor from "@ipld/dag-cbor";
import type { ClientState } from "ts-mls";
import {
  type KeyMaterial,
  addMembers,
  checkKeyPackageRecord,
  cipherSuite,
  createGroup,
  deviceKeyPublic,
  groupDataOf,
  mailboxKeySeed,
  newSignatureKeyPair,
  receive,
  sendMessage,
  setMailbox,
  toHex,
  updateGroupData,
} from "../../src/mls/index.js";
import { Host, b64 } from "./harness.js";
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

/** A record value with `$bytes` fields as bytes (what a verified proof yields). */
function bytesOf(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, typeof v === "object" && v !== null && "$bytes" in v ? fromB64(String((v as { $bytes: string }).$bytes)) : v]),
  );
}

test("a group created by this library with a Rust device in it: add, welcome, messages, a rename openmls accepts", async () => {
  await host.atmls("--profile", "alice", "account", "create", "--pds", host.url, "--handle", "alice.test", "--email", "a@example.com", "--password", "correct horse");
  const aliceDid = (JSON.parse(await host.atmls("--profile", "alice", "keys", "--json", "list")) as { account: string }).account;
  const account = (await (await host.xrpc("com.atproto.server.createAccount", { body: { handle: "bob.test", email: "b@example.com", password: "battery staple" } })).json()) as {
    did: string;
    accessJwt: string;
  };
  const did = account.did;
  const bearer = `Bearer ${account.accessJwt}`;
  const ds = ((await (await host.xrpc("chat.mls.ds.describeServer")).json()) as { did: string }).did;
  const put = (collection: string, rkey: string, record: Record<string, unknown>) =>
    host.xrpc("com.atproto.repo.putRecord", { authorization: bearer, body: { repo: did, collection, rkey, record: { $type: collection, ...record } } });
  await put("chat.mls.declaration", "self", { deliveryService: ds, invitePolicy: "anyone", ciphersuites: [1], createdAt: new Date().toISOString() });
  const deviceId = "tsmls0creator000";
  const deviceSeed = ed25519.utils.randomSecretKey();
  await put("chat.mls.device", deviceId, { deviceId, deviceKey: { $bytes: b64(deviceKeyPublic(deviceSeed)) }, createdAt: new Date().toISOString() });
  const car = new Uint8Array(await (await host.xrpc("com.atproto.sync.getRecord", { query: `did=${did}&collection=chat.mls.device&rkey=${deviceId}` })).arrayBuffer());
  const device = { did, deviceId, deviceKeySeed: deviceSeed, deviceRecordProof: car };
  const material: KeyMaterial<string> = {
    keys: new Map([[aliceDid, { kind: "key", key: "host" }]]),
    verifyRecord: async ({ did: who, collection, rkey }) => {
      const res = await host.xrpc("com.atproto.repo.getRecord", { query: `repo=${who}&collection=${collection}&rkey=${rkey}` });
      return { kind: "present", record: bytesOf(((await res.json()) as { value: Record<string, unknown> }).value) };
    },
  };

  // Epoch 0 and the group mailbox (§11.3), then the first commit setting it.
  const created = await createGroup({ device, signatureKey: await newSignatureKeyPair(), ds, name: "tea", now: Date.now() });
  const auth = (await (await host.xrpc("com.atproto.server.getServiceAuth", { authorization: bearer, query: `aud=${encodeURIComponent(ds)}&lxm=chat.mls.ds.createMailbox` })).json()) as { token: string };
  const mailboxName = ((await (await host.xrpc("chat.mls.ds.createMailbox", {
    authorization: `Bearer ${auth.token}`,
    body: { kind: "group", key: { $bytes: b64(ed25519.getPublicKey(created.mailboxSeed)) }, epoch: 0 },
  })).json()) as { mailbox: string }).mailbox;
  const mailboxId = unbase32(mailboxName);
  const own = new Set<string>();
  const commit = async (state: ClientState, built: { epoch: bigint; message: Uint8Array; nextMailboxSeed: Uint8Array }) => {
    const payload = pad(built.message);
    own.add(toHex(payload));
    const raw = JSON.stringify({
      mailbox: mailboxName,
      envelopes: [{ kind: "commit", epoch: Number(built.epoch), payload: { $bytes: b64(payload) }, nextKey: { $bytes: b64(ed25519.getPublicKey(built.nextMailboxSeed)) } }],
    });
    const res = await host.xrpc("chat.mls.ds.sendEnvelopes", { raw, authorization: await mailboxAuth(await mailboxKeySeed(state), "chat.mls.ds.sendEnvelopes", mailboxId, raw) });
    return ((await res.json()) as { firstSeq: number }).firstSeq;
  };
  const first = await setMailbox(created.state, mailboxId);
  await commit(created.state, first);
  let state = first.newState;
  assert.equal(base32(groupDataOf(state).mailbox), mailboxName);

  // The Rust device's one-time KeyPackage, checked as a committer checks it, and added.
  const listed = ((await (await host.xrpc("com.atproto.repo.listRecords", { query: `repo=${aliceDid}&collection=chat.mls.keyPackage` })).json()) as {
    records: { uri: string; value: Record<string, unknown> }[];
  }).records;
  const oneTime = listed.find((r) => r.value["lastResort"] === false);
  assert.ok(oneTime);
  const rkey = oneTime.uri.split("/").pop() ?? "";
  const proof = new Uint8Array(await (await host.xrpc("com.atproto.sync.getRecord", { query: `did=${aliceDid}&collection=chat.mls.keyPackage&rkey=${rkey}` })).arrayBuffer());
  const checked = await checkKeyPackageRecord(bytesOf(oneTime.value), { did: aliceDid, rkey, proof }, Date.now(), material);
  assert.equal(checked.kind, "ok", JSON.stringify(checked.kind === "refused" ? checked.refusal : checked.kind));
  if (checked.kind !== "ok") throw new Error("unreachable");
  const add = await addMembers(state, [checked.invitee], { ratchetTreeInline: true });
  assert.ok(add.welcome);
  const seq = await commit(state, add);
  state = add.newState;

  // The sealed welcome (§11.4) to the Rust device's inbox.
  const cs = await cipherSuite();
  const plaintext = dagCbor.encode({ ds, fromSeq: seq + 1, mailbox: mailboxName, version: 1, welcome: add.welcome.message });
  const sealed = await cs.hpke.seal(await cs.hpke.importPublicKey(checked.invitee.keyPackage.initKey), plaintext, new TextEncoder().encode("chat.mls welcome v1"), new Uint8Array());
  const layout = new Uint8Array(7 + sealed.enc.length + sealed.ct.length);
  const view = new DataView(layout.buffer);
  layout[0] = 1;
  view.setUint16(1, sealed.enc.length);
  layout.set(sealed.enc, 3);
  view.setUint32(3 + sealed.enc.length, sealed.ct.length);
  layout.set(sealed.ct, 7 + sealed.enc.length);
  const inbox = (oneTime.value["inbox"] as { mailbox: string }).mailbox;
  await host.xrpc("chat.mls.ds.sendWelcome", { body: { inbox, payload: { $bytes: b64(pad(layout)) } } });

  // The Rust device joins, and agrees on the epoch.
  const joined = await host.atmls("--profile", "alice", "inbox", "--json");
  assert.match(joined, /"type":"joined"/, joined.slice(0, 400));
  const info = JSON.parse(await host.atmls("--profile", "alice", "group", "--json", "info", "tea")) as { epochAuthenticator: string; members: { device: string }[] };
  assert.equal(info.epochAuthenticator, toHex(state.keySchedule.epochAuthenticator));
  assert.deepEqual(info.members.map((m) => m.device).sort(), [deviceId, checked.deviceId].sort());

  // Messages both ways.
  const sent = await sendMessage(state, content("hello from the creator"));
  const payload = pad(sent.message);
  own.add(toHex(payload));
  const raw = JSON.stringify({ mailbox: mailboxName, envelopes: [{ kind: "message", payload: { $bytes: b64(payload) } }] });
  await host.xrpc("chat.mls.ds.sendEnvelopes", { raw, authorization: await mailboxAuth(await mailboxKeySeed(state), "chat.mls.ds.sendEnvelopes", mailboxId, raw) });
  state = sent.newState;
  assert.match(await host.atmls("--profile", "alice", "inbox", "--json"), /hello from the creator/);
  await host.atmls("--profile", "alice", "send", "tea", "hello creator");
  let cursor = seq;
  const read = async (): Promise<string[]> => {
    const texts: string[] = [];
    const query = `mailbox=${mailboxName}&cursor=${cursor}`;
    const res = await host.xrpc("chat.mls.ds.getEnvelopes", { query, authorization: await mailboxAuth(await mailboxKeySeed(state), "chat.mls.ds.getEnvelopes", mailboxId, query) });
    for (const e of ((await res.json()) as { envelopes: Envelope[] }).envelopes) {
      cursor = e.seq;
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
  assert.deepEqual(await read(), ["hello creator"]);

  // A rename: a GroupContextExtensions-only commit by the admin.
  const rename = await updateGroupData(state, (d) => ({ ...d, name: "coffee" }));
  await commit(state, rename);
  state = rename.newState;
  const afterRename = await host.atmls("--profile", "alice", "inbox", "--json");
  assert.doesNotMatch(afterRename, /"type":"(rejected|broken|commitRefused)"/, `the Rust device: ${afterRename.slice(0, 500)}`);
  const renamed = JSON.parse(await host.atmls("--profile", "alice", "group", "--json", "info", "coffee")) as { epochAuthenticator: string; name: string; broken: unknown };
  assert.equal(renamed.name, "coffee");
  assert.equal(renamed.broken, null);
  assert.equal(renamed.epochAuthenticator, toHex(state.keySchedule.epochAuthenticator), "the Rust device merged the rename");
});
