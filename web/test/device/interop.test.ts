// A TS device (web/src/device) and Rust devices (the atmls CLI) in the same groups, against
// the real server (docs/spec.md §11): joining a Rust group, messages both ways, a TS-created
// group with a Rust member and a second TS account, a commit race, the account's second TS
// device auto-added (§11.10), removal, and reopening the stored state.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Device, MemoryStorage } from "../../src/device/index.js";
import { type Server, createAccount, login, rust, rustAccount, startServer, until } from "./harness.js";

let server: Server;
let bob: Device;
let bobStore: MemoryStorage;
let aliceDid = "";
let bobDid = "";
let carolDid = "";
let tea = "";

const config = () => ({ resolver: server.resolver, dsEndpoint: server.url, ownDeviceCheckIntervalMs: 0 });

before(async () => {
  server = await startServer();
  await rustAccount(server, "alice", "alice.test");
  bobDid = (await createAccount(server.url, "bob.test")).did;
  carolDid = (await createAccount(server.url, "carol.test")).did;
});

after(async () => {
  bob?.stopLive();
  await server?.stop();
});

test("a TS device joins a Rust device's group; messages flow both ways", { timeout: 120_000 }, async () => {
  bobStore = new MemoryStorage();
  bob = await Device.create(await login(server, "bob.test"), bobStore, config());
  const created = (await rust(server, "alice", ["group", "create", "tea", "--with", "bob.test"])) as { members: { did: string }[] };
  aliceDid = created.members.find((m) => m.did !== bobDid)!.did;
  const report = await bob.sync();
  assert.equal(report.joined.length, 1, `joined: ${JSON.stringify(report)}`);
  tea = report.joined[0]!;
  const info = (await rust(server, "alice", ["group", "info", "tea"])) as { ciphersuite: number; members: { did: string; device: string }[] };
  assert.equal(info.ciphersuite, 1, "a group with a browser device is 0x0001 (§11.19)");
  assert.deepEqual(info.members.map((m) => m.did).sort(), [aliceDid, bobDid].sort());
  await rust(server, "alice", ["send", "tea", "hello bob"]);
  await bob.sync();
  const lines = await bob.messages(tea);
  const hello = lines.find((l) => l.kind === "text" && l.text === "hello bob");
  assert.ok(hello, `lines: ${JSON.stringify(lines)}`);
  assert.equal(hello.from, aliceDid);
  await bob.send(tea, "hi alice");
  const seen = (await rust(server, "alice", ["inbox"])) as { events: { type: string; text?: string; sender?: string }[] };
  assert.ok(seen.events.some((e) => e.type === "message" && e.text === "hi alice" && e.sender === bobDid), JSON.stringify(seen));
});

let web = "";
let carol: Device;

test("a TS device creates a group with a Rust device and another TS account", { timeout: 120_000 }, async () => {
  carol = await Device.create(await login(server, "carol.test"), new MemoryStorage(), config());
  const { id, added } = await bob.createGroup("web", [aliceDid, carolDid]);
  web = id;
  assert.equal(added.kind, "accepted");
  if (added.kind === "accepted") assert.deepEqual(added.undelivered, []);
  const joined = await carol.sync();
  assert.deepEqual(joined.joined, [web]);
  const seen = (await rust(server, "alice", ["inbox"])) as { events: { type: string; group?: string }[] };
  assert.ok(JSON.stringify(seen).includes(web), `alice's inbox: ${JSON.stringify(seen)}`);
  const info = (await rust(server, "alice", ["group", "info", "web"])) as { ciphersuite: number; members: { did: string }[] };
  assert.equal(info.ciphersuite, 1);
  assert.deepEqual(info.members.map((m) => m.did).sort(), [aliceDid, bobDid, carolDid].sort());
  await rust(server, "alice", ["send", "web", "from rust"]);
  await carol.send(web, "from carol");
  await bob.sync();
  await carol.sync();
  const bobLines = (await bob.messages(web)).filter((l) => l.kind === "text").map((l) => `${l.from === bobDid ? "me" : l.from}:${l.text}`);
  assert.deepEqual(bobLines, [`${aliceDid}:from rust`, `${carolDid}:from carol`]);
  assert.ok((await carol.messages(web)).some((l) => l.text === "from rust" && l.from === aliceDid));
  const inbox = (await rust(server, "alice", ["inbox"])) as { events: { type: string; text?: string }[] };
  assert.ok(inbox.events.some((e) => e.text === "from carol"), JSON.stringify(inbox));
});

test("a commit race: the Rust device commits first, the TS device rebuilds on the new epoch", { timeout: 120_000 }, async () => {
  const before = (await bob.groups()).find((g) => g.id === tea)!.epoch;
  // alice commits at the epoch bob is at; bob has not read it when it commits.
  await rust(server, "alice", ["group", "add", "tea", "carol.test"]);
  const raced = await bob.rotate(tea);
  assert.equal(raced.kind, "accepted");
  if (raced.kind === "accepted") assert.equal(raced.attempts, 2, "the first attempt met EpochConflict");
  const after = (await bob.groups()).find((g) => g.id === tea)!;
  assert.ok(after.epoch > before + 1n, `epoch ${before} -> ${after.epoch}`);
  assert.ok(after.members.some((m) => m.did === carolDid), "alice's commit was applied");
  await rust(server, "alice", ["send", "tea", "after the race"]);
  await bob.sync();
  assert.ok((await bob.messages(tea)).some((l) => l.text === "after the race"));
});


test("the account's second TS device is added to its groups by the first (§11.10)", { timeout: 120_000 }, async () => {
  const bob2 = await Device.create(await login(server, "bob.test"), new MemoryStorage(), config());
  const groupsBefore = (await bob.groups()).filter((g) => !g.removed).map((g) => g.id).sort();
  await bob.sync();
  const joined = await bob2.sync();
  assert.deepEqual(joined.joined.sort(), groupsBefore, "bob2 joined every group of bob");
  await rust(server, "alice", ["send", "tea", "to both bobs"]);
  await bob2.sync();
  assert.ok((await bob2.messages(tea)).some((l) => l.text === "to both bobs"));
  const info = (await rust(server, "alice", ["group", "info", "tea"])) as { members: { did: string; device: string }[] };
  assert.equal(info.members.filter((m) => m.did === bobDid).length, 2, "two devices of bob in tea");
  await bob2.send(web, "from bob2");
  await carol.sync();
  assert.ok((await carol.messages(web)).some((l) => l.text === "from bob2" && l.from === bobDid));
});

test("members ask to leave (a TS and a Rust device); the TS admin commits it", { timeout: 120_000 }, async () => {
  await carol.leave(web);
  await rust(server, "alice", ["group", "leave", "web"]);
  await bob.sync();
  const g = (await bob.groups()).find((x) => x.id === web)!;
  assert.ok(!g.members.some((m) => m.did === carolDid), "carol is out");
  assert.ok(!g.members.some((m) => m.did === aliceDid), "alice is out");
  await carol.sync();
  assert.equal((await carol.groups()).find((x) => x.id === web)?.removed, true);
});

test("live: an envelope on the subscription wakes a sync", { timeout: 60_000 }, async () => {
  const changed = new Promise<void>((resolve) => {
    const off = bob.subscribe((e) => {
      if (e.kind === "group" && e.group === tea) {
        off();
        resolve();
      }
    });
  });
  await bob.startLive();
  await rust(server, "alice", ["send", "tea", "live one"]);
  await Promise.race([changed, new Promise((_, reject) => setTimeout(() => reject(new Error("no live update in 20 s")), 20_000))]);
  await until("the live message", async () => ((await bob.messages(tea)).some((l) => l.text === "live one") ? true : undefined));
  bob.stopLive();
});

test("the state survives reopening; a removed device no longer reads", { timeout: 120_000 }, async () => {
  const linesBefore = await bob.messages(tea);
  const reopened = await Device.open(bobStore, config());
  assert.ok(reopened);
  assert.deepEqual(await reopened.messages(tea), linesBefore);
  assert.equal(reopened.hasSession, false);
  await reopened.send(tea, "after reopening");
  const inbox = (await rust(server, "alice", ["inbox"])) as { events: { text?: string }[] };
  assert.ok(inbox.events.some((e) => e.text === "after reopening"), JSON.stringify(inbox));
  bob = reopened;
  await rust(server, "alice", ["group", "remove", "tea", "bob.test"]);
  await bob.sync();
  const g = (await bob.groups()).find((x) => x.id === tea)!;
  assert.equal(g.removed, true);
  await rust(server, "alice", ["send", "tea", "secret after removal"]);
  await bob.sync();
  assert.ok(!(await bob.messages(tea)).some((l) => l.text === "secret after removal"));
  await assert.rejects(bob.send(tea, "still here?"), /no longer in the group/);
});
