// Interop with the Rust client (openmls) without building Rust: the prebuilt `atmls` CLI
// ($ATMLS_BIN) serves an embedded PDS + PLC + DS on loopback; this test makes an account
// whose device is this library — it publishes its `chat.mls.device` record and a
// KeyPackage record built by web/src/mls, in the exact bytes atmls publishes — then
// checks (1) that a Rust device's KeyPackage read from the same host has the same shape
// as ours (capabilities, extensions, lifetime rule), (2) that `atmls keys list` verifies
// ours as an inviter would (§3.3 steps 1–9, binding included), and (3) that a Rust device
// adds our device to a group with it (openmls validates the KeyPackage in a commit).
//
// Run: ATMLS_BIN=/path/to/atmls npm run interop   (fails when ATMLS_BIN is not set)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ed25519 } from "@noble/curves/ed25519.js";
import { decodeMlsMessage } from "ts-mls";
import { buildKeyPackage, deviceKeyPublic, newSignatureKeyPair } from "../../src/mls/index.js";
import { Host, b64, tid } from "./harness.js";

let host: Host;
before(async () => {
  host = await Host.start();
});
after(() => host?.stop());

const atmls = (...args: string[]) => host.atmls(...args);
/** An XRPC call with a bearer token, a JSON body or query parameters. */
const xrpc = (method: string, init: { token?: string; body?: unknown; query?: Record<string, string> } = {}) =>
  host.xrpc(method, {
    ...(init.token === undefined ? {} : { authorization: `Bearer ${init.token}` }),
    ...(init.body === undefined ? {} : { body: init.body }),
    ...(init.query === undefined ? {} : { query: new URLSearchParams(init.query).toString() }),
  });

test("a KeyPackage of this library is verified and added by the Rust client", async () => {
  // A Rust device of alice, and its KeyPackage as the reference.
  await atmls("--profile", "alice", "account", "create", "--pds", host.url, "--handle", "alice.test", "--email", "a@example.com", "--password", "correct horse");
  // bob: an account whose device is this library.
  const account = (await (await xrpc("com.atproto.server.createAccount", { body: { handle: "bob.test", email: "b@example.com", password: "battery staple" } })).json()) as {
    did: string;
    accessJwt: string;
  };
  const did = account.did;
  const token = account.accessJwt;
  const describe = (await (await xrpc("chat.mls.ds.describeServer")).json()) as { did: string };
  const deviceId = "tsmls0device0web";
  const seed = ed25519.utils.randomSecretKey();
  const put = (collection: string, rkey: string, record: Record<string, unknown>) =>
    xrpc("com.atproto.repo.putRecord", { token, body: { repo: did, collection, rkey, record: { $type: collection, ...record } } });
  await put("chat.mls.declaration", "self", {
    deliveryService: describe.did,
    invitePolicy: "anyone",
    ciphersuites: [1],
    createdAt: new Date().toISOString(),
  });
  await put("chat.mls.device", deviceId, { deviceId, deviceKey: { $bytes: b64(deviceKeyPublic(seed)) }, createdAt: new Date().toISOString() });
  const car = new Uint8Array(
    await (await xrpc("com.atproto.sync.getRecord", { query: { did, collection: "chat.mls.device", rkey: deviceId } })).arrayBuffer(),
  );
  const built = await buildKeyPackage({
    device: { did, deviceId, deviceKeySeed: seed, deviceRecordProof: car },
    signatureKey: await newSignatureKeyPair(),
    lastResort: true,
    now: Date.now(),
  });
  const publish = async (rkey: string, kp: typeof built) =>
    put("chat.mls.keyPackage", rkey, {
      keyPackage: { $bytes: b64(kp.message) },
      keyPackageRef: { $bytes: b64(kp.keyPackageRef) },
      ciphersuite: 1,
      deviceId,
      inbox: { service: describe.did, mailbox: "a".repeat(52) },
      lastResort: kp.lastResort,
      createdAt: new Date(kp.createdAt).toISOString(),
      expiresAt: new Date(kp.expiresAt).toISOString(),
    });
  const rkey = tid(1);
  await publish(rkey, built);
  // A control the Rust client must refuse: a package whose binding is signed by another device key.
  const forged = await buildKeyPackage({
    device: { did, deviceId, deviceKeySeed: ed25519.utils.randomSecretKey(), deviceRecordProof: car },
    signatureKey: await newSignatureKeyPair(),
    lastResort: false,
    now: Date.now(),
  });
  const forgedRkey = tid(2);
  await publish(forgedRkey, forged);

  // (1) Same shape as the Rust device's last-resort KeyPackage.
  const list = JSON.parse(await atmls("--profile", "alice", "keys", "--json", "list", "alice.test")) as {
    account: string;
    records: { rkey: string; lastResort: boolean; device: string }[];
  };
  const rustRkey = list.records.find((r) => r.lastResort)?.rkey;
  assert.ok(rustRkey);
  const rustRecord = (await (await xrpc("com.atproto.repo.getRecord", { query: { repo: list.account, collection: "chat.mls.keyPackage", rkey: rustRkey } })).json()) as {
    value: { keyPackage: { $bytes: string }; createdAt: string };
  };
  const decoded = decodeMlsMessage(new Uint8Array(Buffer.from(rustRecord.value.keyPackage.$bytes, "base64")), 0);
  assert.ok(decoded !== undefined && decoded[0].wireformat === "mls_key_package");
  const rust = decoded[0].keyPackage;
  const ours = built.publicPackage;
  assert.deepEqual(ours.leafNode.capabilities, rust.leafNode.capabilities);
  assert.deepEqual(ours.extensions, rust.extensions);
  assert.deepEqual(
    ours.leafNode.extensions.map((e) => e.extensionType),
    rust.leafNode.extensions.map((e) => e.extensionType),
  );
  const rustCreated = BigInt(Math.floor(Date.parse(rustRecord.value.createdAt) / 1000));
  const ourCreated = BigInt(Math.floor(built.createdAt / 1000));
  if (ours.leafNode.leafNodeSource !== "key_package" || rust.leafNode.leafNodeSource !== "key_package") throw new Error("not KeyPackage leaves");
  assert.equal(ours.leafNode.lifetime.notBefore - ourCreated, rust.leafNode.lifetime.notBefore - rustCreated);
  assert.equal(ours.leafNode.lifetime.notAfter - ourCreated, rust.leafNode.lifetime.notAfter - rustCreated);

  // (2) The Rust client verifies ours as an inviter would.
  const bobs = JSON.parse(await atmls("--profile", "alice", "keys", "--json", "list", "bob.test")) as {
    records: { rkey: string; device: string; verified: unknown }[];
  };
  const mine = bobs.records.find((r) => r.rkey === rkey);
  assert.ok(mine, "the record is listed");
  assert.equal(mine.device, deviceId);
  assert.ok(mine.verified !== null && typeof mine.verified === "object", `the Rust client's verdict: ${JSON.stringify(mine.verified)}`);
  const control = bobs.records.find((r) => r.rkey === forgedRkey);
  assert.ok(control, "the control record is listed");
  assert.equal(control.verified, null, "the Rust client refuses a package whose binding does not verify");

  // (3) A Rust device creates a group with bob: openmls takes our KeyPackage into a commit.
  const created = JSON.parse(await atmls("--profile", "alice", "group", "--json", "create", "tea", "--with", "bob.test")) as {
    epoch: number;
    members: { did: string; device: string; leaf: number }[];
  };
  assert.deepEqual(
    created.members.map((m) => [m.did, m.device]),
    [
      [list.account, list.records[0]?.device],
      [did, deviceId],
    ],
    "bob's device (this library's KeyPackage) is a leaf of the Rust device's group",
  );
  assert.ok(created.epoch >= 2);
});
