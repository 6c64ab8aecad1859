// Gathering KeyPackages (§3.2, §11.9) when the device's DS cannot gather an account: the
// client reads that account's PDS itself. Found against the official PDS, where a DS in
// attached mode answered `unreachable` for accounts whose PDS is on plain-http loopback.
// Here the DS is a stand-in that answers `unreachable` (or fails); the PDS is the real
// embedded host of `atmls serve`, with a Rust account and device made by the CLI.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { gatherCandidates } from "../../src/device/invite.js";
import type { DsClient } from "../../src/net/ds.js";
import { NetworkError } from "../../src/net/errors.js";
import type { DidResult } from "../../src/net/lexicon.js";
import { RevTracker } from "../../src/net/proof/verify.js";
import { type Server, rust, rustAccount, startServer } from "./harness.js";

let server: Server;
let aliceDid = "";

before(async () => {
  server = await startServer();
  await rustAccount(server, "alice", "alice.test", "off");
  const who = (await rust(server, "alice", ["account", "show"])) as { did?: string; account?: { did?: string } };
  aliceDid = who.did ?? who.account?.did ?? "";
  assert.match(aliceDid, /^did:plc:/, JSON.stringify(who));
});

after(async () => {
  await server?.stop();
});

const gather = (ds: Pick<DsClient, "getKeyPackages">) =>
  gatherCandidates({ ds: ds as DsClient, dids: [aliceDid], resolver: server.resolver, revs: new RevTracker(), used: new Set(), wanted: () => true });

test("an account the DS answers `unreachable` for is read from its PDS", { timeout: 60_000 }, async () => {
  let asked = 0;
  const { candidates, refused } = await gather({
    getKeyPackages: async (dids) => {
      asked++;
      return dids.map((did): DidResult => ({ did, status: "unreachable", message: "stand-in", keyPackages: [] }));
    },
  });
  assert.equal(asked, 1);
  assert.deepEqual(refused, []);
  assert.equal(candidates.length, 1, "alice's one device, from her PDS");
  assert.equal(candidates[0]!.did, aliceDid);
});

test("a failing DS request: every account is read from its PDS", { timeout: 60_000 }, async () => {
  const { candidates } = await gather({
    getKeyPackages: async () => {
      throw new NetworkError("chat.mls.ds.getKeyPackages", "stand-in");
    },
  });
  assert.equal(candidates.length, 1);
});

test("an account no PDS answers for keeps the DS's status", { timeout: 60_000 }, async () => {
  // A DID that has no repo here: its PDS cannot be read either, so the DS's status stands.
  const { candidates, refused } = await gatherCandidates({
    ds: { getKeyPackages: async (dids: readonly string[]) => dids.map((did) => ({ did, status: "notFound", keyPackages: [] })) } as unknown as DsClient,
    dids: ["did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"],
    resolver: server.resolver,
    revs: new RevTracker(),
    used: new Set(),
    wanted: () => true,
  });
  assert.equal(candidates.length, 0);
  assert.deepEqual(refused.map((r) => r.reason), ["notFound"]);
});
