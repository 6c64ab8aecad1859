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
  const info = await rust(server, "alice", ["group", "info", "tea"]);
  console.log(JSON.stringify(info).slice(0, 800));
  await rust(server, "alice", ["send", "tea", "hello bob"]);
  await bob.sync();
  const lines = await bob.messages(tea);
  const hello = lines.find((l) => l.kind === "text" && l.text === "hello bob");
  assert.ok(hello, `lines: ${JSON.stringify(lines)}`);
  assert.equal(hello.from, aliceDid);
  await bob.send(tea, "hi alice");
  const seen = await rust(server, "alice", ["inbox"]);
  console.log(JSON.stringify(seen).slice(0, 1500));
  assert.ok(JSON.stringify(seen).includes("hi alice"));
});
