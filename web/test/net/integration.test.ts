// The network layer against the real server: `atmls serve` (embedded PDS host, PLC directory,
// DS) on loopback, one account used through src/net (PDS session, records, inbox and group
// mailboxes, envelopes, the live subscription, typed errors) and one Rust device made by the
// `atmls` CLI whose KeyPackages are fetched through the DS and verified (docs/spec.md §3, §6–§10).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { DsClient } from "../../src/net/ds.js";
import { resolveDid, type ResolverConfig } from "../../src/net/did.js";
import { EpochConflictError, XrpcError } from "../../src/net/errors.js";
import type { Did } from "../../src/net/json.js";
import { keyPackagesFromPds, verifyDidResult } from "../../src/net/keypackages.js";
import type { Envelope } from "../../src/net/lexicon.js";
import { NSID } from "../../src/net/lexicon.js";
import type { MailboxId } from "../../src/net/mailbox-id.js";
import { PdsSession } from "../../src/net/pds.js";
import { RevTracker } from "../../src/net/proof/verify.js";
import { EnvelopeSubscription } from "../../src/net/subscribe.js";
import { xrpcCall } from "../../src/net/xrpc.js";
import { MailboxKey } from "../../src/proto/request.js";
import { realKeyPackage } from "./kp-fixture.js";
import { cli, createAccount, startServer, type Server } from "./server.js";

const te = new TextEncoder();
const PASSWORD = "webnet-pw-12345678";
let server: Server;
let resolver: ResolverConfig;
let session: PdsSession;
let ds: DsClient;
let dsDid: Did;
let rustDid: Did;
let inbox: MailboxId;
const owner = MailboxKey.generate();

before(async () => {
  server = await startServer();
  resolver = { plcUrl: server.url, allowHttpLoopback: true };
  await createAccount(server.url, "web1.test", PASSWORD);
  // The Rust device: an account made by the CLI (inbox, declaration, device, KeyPackages).
  await cli(server, ["--profile", "rust", "--xwing", "off", "account", "create", "--pds", server.url, "--handle", "rust1.test", "--email", "rust1@example.com", "--password", PASSWORD]);
});

after(async () => {
  await server?.stop();
});

test("log in, resolve the handle and the DS from its DID", { timeout: 30_000 }, async () => {
  session = await PdsSession.login(server.url, "web1.test", PASSWORD, { resolver });
  assert.match(session.did, /^did:plc:[a-z2-7]{24}$/);
  assert.equal(session.handle, "web1.test");
  const rust = await session.resolveHandle("rust1.test");
  rustDid = rust.did;
  assert.notEqual(rustDid, session.did);
  assert.equal(rust.document.atprotoKey?.curve !== undefined, true);
  await assert.rejects(session.resolveHandle("nobody.test"), XrpcError);
  const description = await new DsClient(server.url).describeServer();
  assert.equal(description.protocolVersion, 1);
  dsDid = description.did;
  const dsDoc = await resolveDid(dsDid, resolver);
  assert.ok(dsDoc.chatMlsDs, "the DS's DID document names #chat_mls_ds");
  ds = new DsClient(dsDoc.chatMlsDs);
});

test("create the inbox through service auth; a spent token is refused", { timeout: 30_000 }, async () => {
  const token = await session.serviceAuth(dsDid, NSID.createMailbox);
  const made = await ds.createMailbox({ kind: "inbox", key: owner.publicKey }, token);
  assert.equal(made.kind, "inbox");
  assert.equal(made.seq, 0);
  inbox = made.mailbox;
  const replay = await ds.createMailbox({ kind: "inbox", key: owner.publicKey }, token).catch((e: unknown) => e);
  assert.ok(replay instanceof XrpcError);
  assert.equal(replay.error, "InvalidToken");
  assert.equal(replay.status, 401);
  assert.equal(replay.kind, "permanent");
  const wrongLxm = await session.serviceAuth(dsDid, NSID.getMailbox);
  const e = await ds.createMailbox({ kind: "inbox", key: owner.publicKey }, wrongLxm).catch((x: unknown) => x);
  assert.ok(e instanceof XrpcError && e.error === "InvalidToken" && /^WrongLxm/.test(e.message.split(": ").slice(2).join(": ")), String(e));
});

test("publish the declaration, the device and a real KeyPackage record; read them back", { timeout: 60_000 }, async () => {
  const now = new Date();
  await session.putDeclaration({ deliveryService: dsDid, invitePolicy: "anyone", ciphersuites: [1], createdAt: now.toISOString() });
  await session.putDevice({ deviceId: "webnetdevice01", deviceKey: MailboxKey.generate().publicKey, createdAt: now.toISOString() });
  const kp = await realKeyPackage(session.did);
  const written = await session.publishKeyPackages([
    {
      keyPackage: kp.bytes,
      keyPackageRef: kp.ref,
      ciphersuite: 1,
      deviceId: "webnetdevice01",
      inbox: { service: dsDid, mailbox: inbox },
      lastResort: true,
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + 30 * 86400_000).toISOString(),
    },
  ]);
  assert.equal(written.length, 1);
  const mine = await session.listKeyPackages();
  assert.equal(mine.length, 1);
  assert.deepEqual([...mine[0]!.value.keyPackage], [...kp.bytes]);
  assert.equal((await session.declaration())?.deliveryService, dsDid);
  assert.equal((await session.listDevices())[0]?.value.deviceId, "webnetdevice01");
  // Through the DS's getKeyPackages, this account's records verify against its #atproto key.
  const [result] = await ds.getKeyPackages([session.did]);
  assert.equal(result?.status, "ok");
  const verified = await verifyDidResult(result!, resolver, new RevTracker());
  assert.equal(verified.refused.length, 0);
  assert.equal(verified.declaration?.invitePolicy, "anyone");
  assert.equal(verified.keyPackages.length, 1);
  assert.equal(verified.keyPackages[0]!.cid, written[0]!.cid);
});

test("a group mailbox: send, read, subscribe and receive live, commit, EpochConflict", { timeout: 60_000 }, async () => {
  const k0 = MailboxKey.generate();
  const made = await ds.createMailbox({ kind: "group", key: k0.publicKey, epoch: 0 }, await session.serviceAuth(dsDid, NSID.createMailbox));
  const mb = made.mailbox;
  assert.equal(made.epoch, 0);
  const sent = await ds.sendEnvelopes(mb, k0, [
    { kind: "message", payload: te.encode("one") },
    { kind: "message", payload: te.encode("two") },
  ]);
  assert.deepEqual(sent, { firstSeq: 1, lastSeq: 2, epoch: 0 });
  const page = await ds.getEnvelopes(mb, k0, { cursor: 0 });
  assert.deepEqual(page.envelopes.map((e) => new TextDecoder().decode(e.payload)), ["one", "two"]);
  assert.equal(page.headSeq, 2);
  assert.equal(page.cursor, 2);

  // Subscribe from cursor 1: the backlog (seq 2), then live envelopes.
  const got: Envelope[] = [];
  let waiter: (() => void) | undefined;
  const sub = new EnvelopeSubscription(ds.endpoint, [{ mailbox: mb, key: k0, cursor: 1 }], {
    envelope: (_m, e) => {
      got.push(e);
      waiter?.();
    },
  });
  const until = (n: number) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`only ${got.length} envelopes`)), 15_000);
      const check = () => {
        if (got.length >= n) {
          clearTimeout(t);
          resolve();
        }
      };
      waiter = check;
      check();
    });
  sub.start();
  try {
    await until(1);
    assert.equal(got[0]!.seq, 2);
    const k1 = MailboxKey.generate();
    const commit = await ds.sendEnvelopes(mb, k0, [{ kind: "commit", epoch: 0, payload: te.encode("commit"), nextKey: k1.publicKey }]);
    assert.deepEqual(commit, { firstSeq: 3, lastSeq: 3, epoch: 1 });
    await until(2);
    assert.equal(got[1]!.kind, "commit");
    assert.equal(got[1]!.epoch, 0);
    sub.setKey(mb, k1);
    await ds.sendEnvelopes(mb, k1, [{ kind: "message", payload: te.encode("live") }]);
    await until(3);
    assert.equal(new TextDecoder().decode(got[2]!.payload), "live");
    assert.deepEqual(got.map((e) => e.seq), [2, 3, 4]);

    // A commit built on an old epoch: typed EpochConflict with the mailbox's epoch and head.
    const stale = await ds
      .sendEnvelopes(mb, k1, [{ kind: "commit", epoch: 0, payload: te.encode("late"), nextKey: MailboxKey.generate().publicKey }])
      .catch((e: unknown) => e);
    assert.ok(stale instanceof EpochConflictError, String(stale));
    assert.equal(stale.currentEpoch, 1);
    assert.equal(stale.currentSeq, 4);
    assert.equal(stale.status, 409);
    assert.equal(stale.kind, "transient");
  } finally {
    sub.close();
  }

  // Typed errors: a malformed token, a replayed one, an unregistered key.
  const query = `mailbox=${mb}`;
  const bad = await xrpcCall(ds.endpoint, { method: NSID.getMailbox, query, authorization: "ChatMls-Mailbox not-a-token" }).catch((e: unknown) => e);
  assert.ok(bad instanceof XrpcError && bad.error === "BadToken" && bad.status === 401, String(bad));
  const fixed = { timestampMs: Date.now(), nonce: crypto.getRandomValues(new Uint8Array(16)) };
  const info = await ds.getMailbox(mb, k0, fixed);
  assert.equal(info.epoch, 1);
  const replayed = await ds.getMailbox(mb, k0, fixed).catch((e: unknown) => e);
  assert.ok(replayed instanceof XrpcError && replayed.error === "ReplayedRequest", String(replayed));
  const stranger = await ds.getMailbox(mb, MailboxKey.generate()).catch((e: unknown) => e);
  assert.ok(stranger instanceof XrpcError && stranger.error === "KeyExpired", String(stranger));
  const old = await ds.getMailbox(mb, MailboxKey.generate(), { timestampMs: Date.now() - 3_600_000 }).catch((e: unknown) => e);
  assert.ok(old instanceof XrpcError && old.error === "RequestExpired", String(old));
});

test("the inbox: a welcome deposited, listed with the owner key, deleted; another key is NotOwner", { timeout: 30_000 }, async () => {
  const seq = await ds.sendWelcome(inbox, te.encode("sealed welcome"));
  assert.equal(seq, 1);
  const listed = await ds.listInbox(inbox, owner);
  assert.equal(listed.items.length, 1);
  assert.equal(listed.items[0]!.kind, "welcome");
  assert.equal(new TextDecoder().decode(listed.items[0]!.payload), "sealed welcome");
  const notOwner = await ds.listInbox(inbox, MailboxKey.generate()).catch((e: unknown) => e);
  assert.ok(notOwner instanceof XrpcError && notOwner.error === "NotOwner" && notOwner.status === 403, String(notOwner));
  assert.equal(await ds.deleteInboxItems(inbox, owner, [1]), 1);
  assert.equal(await ds.deleteInboxItems(inbox, owner, [1]), 0);
  assert.equal((await ds.listInbox(inbox, owner)).items.length, 0);
});

test("the Rust device's KeyPackages: through the DS and from its PDS, verified; a tampered proof refused", { timeout: 60_000 }, async () => {
  const results = await ds.getKeyPackages([rustDid, session.did, rustDid]);
  assert.deepEqual(results.map((r) => r.did), [rustDid, session.did]);
  const rust = results[0]!;
  assert.equal(rust.status, "ok");
  assert.ok(rust.keyPackages.length >= 1);
  const verified = await verifyDidResult(rust, resolver, new RevTracker());
  assert.deepEqual(verified.refused, []);
  assert.equal(verified.keyPackages.length, rust.keyPackages.length);
  assert.equal(verified.declaration?.deliveryService, dsDid);
  assert.ok(verified.keyPackages.some((k) => k.record.lastResort));
  for (const k of verified.keyPackages) assert.equal(k.record.inbox.service, dsDid);

  const fromPds = await keyPackagesFromPds(rustDid, resolver, new RevTracker());
  assert.deepEqual(fromPds.keyPackages.map((k) => k.cid).sort(), verified.keyPackages.map((k) => k.cid).sort());
  assert.ok(fromPds.declaration);

  // A proof with one byte changed, a proof under another record's CID, and the proofs of
  // another DID are refused record by record.
  const first = rust.keyPackages[0]!;
  const tampered = first.proof.slice();
  tampered[tampered.length - 5] = (tampered[tampered.length - 5] ?? 0) ^ 0xff;
  const other = results[1]!.keyPackages[0]!;
  const mixed = await verifyDidResult(
    { ...rust, keyPackages: [{ ...first, proof: tampered }, { ...first, cid: other.cid }] },
    resolver,
    new RevTracker(),
  );
  assert.equal(mixed.keyPackages.length, 0);
  assert.deepEqual(mixed.refused.map((r) => r.reason), ["Car", "CidMismatch"]);
  const wrongRepo = await verifyDidResult({ ...results[1]!, did: rustDid }, resolver, new RevTracker());
  assert.equal(wrongRepo.keyPackages.length, 0);
  assert.ok(wrongRepo.refused.every((r) => r.reason === "Uri"));
});

test("error frames of the real DS arrive typed: an unregistered key stops, a future cursor stops", { timeout: 30_000 }, async () => {
  const k0 = MailboxKey.generate();
  const made = await ds.createMailbox({ kind: "group", key: k0.publicKey, epoch: 0 }, await session.serviceAuth(dsDid, NSID.createMailbox));
  const ended = (mailboxes: ConstructorParameters<typeof EnvelopeSubscription>[1]) =>
    new Promise<[unknown, boolean]>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("no failure reported")), 15_000);
      const sub = new EnvelopeSubscription(ds.endpoint, mailboxes, {
        envelope: () => reject(new Error("no envelope expected")),
        failure: (e, retrying) => {
          clearTimeout(t);
          sub.close();
          resolve([e, retrying]);
        },
      });
      sub.start();
    });
  const [stranger, r1] = await ended([{ mailbox: made.mailbox, key: MailboxKey.generate(), cursor: 0 }]);
  assert.ok(stranger instanceof XrpcError && stranger.error === "KeyExpired", String(stranger));
  assert.equal(stranger.kind, "permanent");
  assert.equal(r1, false);
  const [future, r2] = await ended([{ mailbox: made.mailbox, key: k0, cursor: 5 }]);
  assert.ok(future instanceof XrpcError && future.error === "FutureCursor", String(future));
  assert.equal(r2, false);
});

test("replacing a KeyPackage in one commit; an older proof of it is then refused as stale; deleting a record", { timeout: 60_000 }, async () => {
  const revs = new RevTracker();
  const [before] = await ds.getKeyPackages([session.did]);
  const old = await verifyDidResult(before!, resolver, revs);
  assert.equal(old.keyPackages.length, 1);
  const oldRkey = old.keyPackages[0]!.rkey;
  const kp = await realKeyPackage(session.did);
  const now = new Date();
  const [fresh] = await session.publishKeyPackages(
    [{
      keyPackage: kp.bytes, keyPackageRef: kp.ref, ciphersuite: 1, deviceId: "webnetdevice01",
      inbox: { service: dsDid, mailbox: inbox }, lastResort: true,
      createdAt: now.toISOString(), expiresAt: new Date(now.getTime() + 86400_000).toISOString(),
    }],
    [oldRkey],
  );
  // Read from the PDS (the DS caches its answers for 60 s): only the new package, at a newer rev.
  const current = await keyPackagesFromPds(session.did, resolver, revs);
  assert.deepEqual(current.keyPackages.map((k) => k.cid), [fresh!.cid]);
  assert.ok(current.keyPackages[0]!.rev > old.keyPackages[0]!.rev);
  // The DS's earlier answer, replayed, now proves an older revision: refused.
  const replayed = await verifyDidResult(before!, resolver, revs);
  assert.equal(replayed.keyPackages.length, 0);
  assert.ok(replayed.refused.length >= 1 && replayed.refused.every((r) => r.reason === "StaleRev"));
  // A fresh tracker still accepts it (the rule is per client, from what it has seen).
  assert.equal((await verifyDidResult(before!, resolver, new RevTracker())).keyPackages.length, 1);

  await session.deleteRecord("chat.mls.device", "webnetdevice01");
  assert.equal((await session.listDevices()).length, 0);
});
