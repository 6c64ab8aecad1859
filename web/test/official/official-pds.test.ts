// The browser device's library against the official TypeScript PDS (@atproto/pds through
// @atproto/dev-env, tests/interop/official-pds/) with `atmls serve` attached to it as the DS
// (docs/spec.md §13): the TS device logs in to the official PDS and becomes a device there
// (declaration, chat.mls.device, KeyPackages whose proofs the official PDS makes, an inbox
// on our DS through a service-auth token the official PDS issues); a Rust device (the atmls
// CLI, its account on the same official PDS) creates a group with it; messages flow both
// ways; the TS device creates a group with the Rust account.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { Device, MemoryStorage } from "../../src/device/index.js";
import { PdsSession } from "../../src/net/pds.js";
import type { ResolverConfig } from "../../src/net/did.js";
import type { Did } from "../../src/net/json.js";
import { keyPackagesFromPds } from "../../src/net/keypackages.js";
import { RevTracker } from "../../src/net/proof/verify.js";
import { atmlsBin } from "../support/server.js";
import { type OfficialWorld, startOfficialWorld } from "./network.js";

const PASSWORD = "weboff-pw-12345678";
let world: OfficialWorld;
let resolver: ResolverConfig;
let bob: Device;
let bobDid = "";
let aliceDid = "";
let tea = "";

/** The CLI as a Rust device (profile `alice`), against the official PDS and PLC and our DS. */
function rust(args: string[], timeoutMs = 60_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile(
      atmlsBin(),
      ["--profile-dir", join(world.dir, "profiles"), "--profile", "alice", ...args.slice(0, 1), "--json", ...args.slice(1)],
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, ATMLS_PASSPHRASE: "weboff passphrase", ATMLS_PASSWORD: PASSWORD, ATMLS_KDF_INSECURE_FOR_TESTS: "1", ATMLS_LOG: "off" } },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`atmls ${args.slice(0, 2).join(" ")}: ${stderr.slice(0, 800)}`));
        const text = stdout.trim();
        resolve(text === "" ? undefined : (JSON.parse(text) as unknown));
      },
    );
  });
}

/** Creates `<handle>` on the official PDS through its XRPC API; answers its DID. */
async function createAccount(handle: string): Promise<string> {
  const resp = await fetch(`${world.pdsUrl}/xrpc/com.atproto.server.createAccount`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ handle, email: `${handle.split(".")[0]}@example.com`, password: PASSWORD }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await resp.json()) as { did?: unknown };
  if (!resp.ok || typeof body.did !== "string") throw new Error(`createAccount ${resp.status}: ${JSON.stringify(body)}`);
  return body.did;
}

before(async () => {
  world = await startOfficialWorld();
  resolver = { plcUrl: world.plcUrl, allowHttpLoopback: true };
  bobDid = await createAccount("bob.test");
  await rust(["account", "create", "--xwing", "prefer", "--pds", world.pdsUrl, "--plc", world.plcUrl, "--ds", world.dsDid, "--handle", "alice.test", "--email", "alice@example.com", "--password", PASSWORD], 90_000);
}, { timeout: 240_000 });

after(async () => {
  bob?.stopLive();
  await world?.stop();
});

const config = () => ({ resolver, dsEndpoint: world.dsUrl, ownDeviceCheckIntervalMs: 0 });

test("a TS device logs in to the official PDS and becomes a device there", { timeout: 60_000 }, async () => {
  assert.match(bobDid, /^did:plc:/);
  const session = await PdsSession.login(world.pdsUrl, "bob.test", PASSWORD, { resolver });
  assert.equal(session.did, bobDid);
  bob = await Device.create(session, new MemoryStorage(), config());
  assert.equal(bob.identity.did, bobDid);
  // Its records are in its official-PDS repo, and another client verifies their proofs
  // (CARs as the official PDS makes them) from there.
  const account = await keyPackagesFromPds(bobDid as Did, resolver, new RevTracker());
  assert.equal(account.declaration?.invitePolicy, "anyone");
  assert.ok(account.keyPackages.length >= 1, "KeyPackages proven from the official PDS");
  assert.deepEqual(account.refused, []);
  assert.ok(account.keyPackages.every((k) => k.record.deviceId === bob.identity.deviceId && k.record.inbox.service === world.dsDid));
});

test("a Rust device on the official PDS creates a group with the TS account; messages both ways", { timeout: 90_000 }, async () => {
  const created = (await rust(["group", "create", "tea", "--with", "bob.test"])) as { members: { did: string }[] };
  aliceDid = created.members.find((m) => m.did !== bobDid)!.did;
  assert.match(aliceDid, /^did:plc:/);
  const report = await bob.sync();
  assert.equal(report.joined.length, 1, `joined: ${JSON.stringify(report)}`);
  tea = report.joined[0]!;
  await rust(["send", "tea", "hello bob"]);
  await bob.sync();
  const hello = (await bob.messages(tea)).find((l) => l.kind === "text" && l.text === "hello bob");
  assert.ok(hello, "the Rust device's message reached the TS device");
  assert.equal(hello.from, aliceDid);
  await bob.send(tea, "hi alice");
  const seen = (await rust(["inbox"])) as { events: { type: string; text?: string; sender?: string }[] };
  assert.ok(seen.events.some((e) => e.type === "message" && e.text === "hi alice" && e.sender === bobDid), JSON.stringify(seen.events.map((e) => e.type)));
});

test("the TS device creates a group with the Rust account", { timeout: 90_000 }, async () => {
  const { id, added } = await bob.createGroup("web", [aliceDid]);
  assert.equal(added.kind, "accepted");
  const seen = (await rust(["inbox"])) as { events: { type: string; group?: string }[] };
  assert.ok(JSON.stringify(seen).includes(id), "alice's device joined the TS group");
  await rust(["send", "web", "from rust"]);
  await bob.sync();
  assert.ok((await bob.messages(id)).some((l) => l.text === "from rust" && l.from === aliceDid));
});
