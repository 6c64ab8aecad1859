// EnvelopeSubscription against a fake WebSocket: cursors advance, duplicates are dropped, a
// transient error frame reconnects from the last cursor with fresh tokens, a permanent one stops.
import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeFrame } from "../../src/net/frames.js";
import { parseMailboxId } from "../../src/net/mailbox-id.js";
import { EnvelopeSubscription, subscriptionUrl } from "../../src/net/subscribe.js";
import { MailboxKey, parseToken, sha256, signingBytes, subscriptionSignedContent, verifyToken } from "../../src/proto/request.js";
import type { Envelope } from "../../src/net/lexicon.js";
import type { NetFailure } from "../../src/net/errors.js";

const A = parseMailboxId("aeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaq");
const B = parseMailboxId("a".repeat(52));

class FakeSocket {
  static all: FakeSocket[] = [];
  binaryType = "blob";
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: (() => void) | null = null;
  closed = false;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
    queueMicrotask(() => this.onopen?.());
  }
  push(frame: Uint8Array): void {
    this.onmessage?.({ data: frame.buffer.slice(frame.byteOffset, frame.byteOffset + frame.length) });
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    queueMicrotask(() => this.onclose?.());
  }
}

const env = (seq: number) => ({ seq, kind: "message", payload: new Uint8Array([seq]), receivedAt: "2027-01-15T08:00:00.000Z" });
/** Waits (bounded, 5 s) until `done()` holds: the subscription's steps are asynchronous
 * (token signing through WebCrypto), and a fixed pause fails on a loaded machine. */
async function until(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("condition not reached within 5 s");
    await new Promise((r) => setTimeout(r, 2));
  }
}

test("the subscription URL signs the query without auth, one token per mailbox", async () => {
  const ka = MailboxKey.fromSeed(new Uint8Array(32).fill(1));
  const kb = MailboxKey.fromSeed(new Uint8Array(32).fill(2));
  const url = await subscriptionUrl("http://ds.invalid/", [{ mailbox: B, key: kb }, { mailbox: A, key: ka, cursor: 7 }]);
  const [base, query] = url.split("?") as [string, string];
  assert.equal(base, "ws://ds.invalid/xrpc/chat.mls.ds.subscribeEnvelopes");
  // The mailbox with a cursor comes first, so cursors line up by position.
  assert.ok(query.startsWith(`mailbox=${A}&mailbox=${B}&cursor=7&auth=`));
  const content = subscriptionSignedContent(query);
  const auths = query.split("&").filter((c) => c.startsWith("auth=")).map((c) => parseToken(c.slice(5)));
  assert.equal(auths.length, 2);
  for (const [i, mb] of [A, B].entries()) {
    const t = auths[i]!;
    const bytes = signingBytes({ method: "chat.mls.ds.subscribeEnvelopes", mailbox: mb, publicKey: t.publicKey, timestampMs: t.timestampMs, nonce: t.nonce, contentSha256: await sha256(new TextEncoder().encode(content)) });
    assert.ok(verifyToken(t, bytes), `token ${i}`);
    // signed over the other mailbox it would not verify
    const other = signingBytes({ method: "chat.mls.ds.subscribeEnvelopes", mailbox: i === 0 ? B : A, publicKey: t.publicKey, timestampMs: t.timestampMs, nonce: t.nonce, contentSha256: await sha256(new TextEncoder().encode(content)) });
    assert.ok(!verifyToken(t, other));
  }
});

test("reconnects from the last cursor after ConsumerTooSlow, stops on KeyExpired", async () => {
  FakeSocket.all = [];
  const got: number[] = [];
  const failures: [NetFailure, boolean][] = [];
  const key = MailboxKey.fromSeed(new Uint8Array(32).fill(1));
  const sub = new EnvelopeSubscription(
    "http://ds.invalid",
    [{ mailbox: A, key, cursor: 0 }],
    { envelope: (_m, e: Envelope) => got.push(e.seq), failure: (e, r) => failures.push([e, r]) },
    { backoffMs: 1, WebSocket: FakeSocket as unknown as typeof WebSocket },
  );
  sub.start();
  await until(() => FakeSocket.all.length >= 1);
  const s1 = FakeSocket.all[0]!;
  assert.match(s1.url, /mailbox=[a-z2-7]{52}&cursor=0&auth=/);
  for (const seq of [1, 2, 2, 3]) s1.push(encodeFrame({ op: 1, t: "#envelope" }, { mailbox: A, envelope: env(seq) }));
  s1.push(encodeFrame({ op: 1, t: "#heartbeat" }, { time: "2027-01-15T08:00:30.000Z" }));
  s1.push(encodeFrame({ op: 1, t: "#later" }, { x: 1 }));
  s1.push(encodeFrame({ op: -1 }, { error: "ConsumerTooSlow", message: "slow" }));
  s1.close();
  await until(() => FakeSocket.all.length >= 2 && got.length >= 3);
  assert.deepEqual(got, [1, 2, 3]);
  assert.equal(failures.length, 1);
  assert.equal(failures[0]![0].kind, "transient");
  assert.equal(failures[0]![1], true);
  const s2 = FakeSocket.all[1]!;
  assert.ok(s2, "reconnected");
  assert.match(s2.url, /&cursor=3&auth=/);
  assert.notEqual(s2.url.split("auth=")[1], s1.url.split("auth=")[1], "a fresh token");
  s2.push(encodeFrame({ op: 1, t: "#envelope" }, { mailbox: A, envelope: env(4) }));
  s2.push(encodeFrame({ op: -1 }, { error: "KeyExpired", message: "mailbox 0: expired" }));
  s2.close();
  await until(() => failures.length >= 2);
  assert.deepEqual(got, [1, 2, 3, 4]);
  assert.equal(failures.length, 2);
  const [err, retrying] = failures[1]!;
  assert.equal(retrying, false);
  assert.equal("error" in err ? err.error : "", "KeyExpired");
  assert.equal(FakeSocket.all.length, 2, "no reconnect after a permanent failure");
  assert.equal(sub.cursors().get(A), 4);
  sub.close();
});

test("a malformed frame stops the stream as a permanent failure", async () => {
  FakeSocket.all = [];
  const failures: [NetFailure, boolean][] = [];
  const sub = new EnvelopeSubscription("http://ds.invalid", [{ mailbox: A, key: MailboxKey.fromSeed(new Uint8Array(32).fill(1)) }],
    { envelope: () => assert.fail("no envelope"), failure: (e, r) => failures.push([e, r]) },
    { backoffMs: 1, WebSocket: FakeSocket as unknown as typeof WebSocket });
  sub.start();
  await until(() => FakeSocket.all.length >= 1);
  FakeSocket.all[0]!.push(new Uint8Array([0xa1, 0x62, 0x6f]));
  await until(() => failures.length >= 1);
  assert.equal(failures.length, 1);
  assert.equal(failures[0]![0].name, "MalformedAnswerError");
  assert.equal(failures[0]![1], false);
  sub.close();
});
