// DsClient against a fake fetch: what goes on the wire is what was signed, answers are
// parsed into typed values, and errors get their typed class and kind (§7, §11.14).
import { test } from "node:test";
import assert from "node:assert/strict";
import { DsClient } from "../../src/net/ds.js";
import { EpochConflictError, MalformedAnswerError, NetworkError, XrpcError, kindOfStatus } from "../../src/net/errors.js";
import { parseMailboxId } from "../../src/net/mailbox-id.js";
import { MailboxKey, parseToken, sha256, signingBytes, verifyToken } from "../../src/proto/request.js";

const MB = parseMailboxId("aeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaq");

type Seen = { url: string; method: string; headers: Record<string, string>; body: Uint8Array | undefined };

function fakeFetch(status: number, answer: unknown, seen: Seen[]): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const body = init?.body instanceof Uint8Array ? init.body : undefined;
    seen.push({ url: String(input), method: init?.method ?? "GET", headers: init?.headers as Record<string, string>, body });
    const text = typeof answer === "string" ? answer : JSON.stringify(answer);
    return new Response(text, { status, headers: { "content-type": "application/json" } });
  }) as typeof fetch;
}

test("a signed procedure signs exactly the bytes it sends", async () => {
  const seen: Seen[] = [];
  const ds = new DsClient("http://ds.invalid/", { fetch: fakeFetch(200, { firstSeq: 1, lastSeq: 1, epoch: 0 }, seen) });
  const key = MailboxKey.fromSeed(new Uint8Array(32).fill(7));
  const r = await ds.sendEnvelopes(MB, key, [{ kind: "message", payload: new TextEncoder().encode("hi") }]);
  assert.deepEqual(r, { firstSeq: 1, lastSeq: 1, epoch: 0 });
  const s = seen[0]!;
  assert.equal(s.url, "http://ds.invalid/xrpc/chat.mls.ds.sendEnvelopes");
  const auth = s.headers["authorization"]!;
  assert.match(auth, /^ChatMls-Mailbox [A-Za-z0-9_-]{160}$/);
  const token = parseToken(auth.slice("ChatMls-Mailbox ".length));
  const bytes = signingBytes({ method: "chat.mls.ds.sendEnvelopes", mailbox: MB, publicKey: token.publicKey, timestampMs: token.timestampMs, nonce: token.nonce, contentSha256: await sha256(s.body!) });
  assert.ok(verifyToken(token, bytes));
  // A byte changed in the body would not verify: the check can fail.
  const other = s.body!.slice();
  other[other.length - 2] = (other[other.length - 2] ?? 0) ^ 1;
  const wrong = signingBytes({ method: "chat.mls.ds.sendEnvelopes", mailbox: MB, publicKey: token.publicKey, timestampMs: token.timestampMs, nonce: token.nonce, contentSha256: await sha256(other) });
  assert.ok(!verifyToken(token, wrong));
  assert.equal(new TextDecoder().decode(s.body), `{"mailbox":"${MB}","envelopes":[{"kind":"message","payload":{"$bytes":"aGk"}}]}`);
});

test("a signed query signs its query string", async () => {
  const seen: Seen[] = [];
  const page = { envelopes: [{ seq: 42, kind: "message", payload: { $bytes: "aGk" }, receivedAt: "2027-01-15T08:00:00.000Z" }], cursor: 42, headSeq: 42, epoch: 4 };
  const ds = new DsClient("http://ds.invalid", { fetch: fakeFetch(200, page, seen) });
  const key = MailboxKey.fromSeed(new Uint8Array(32).fill(7));
  const got = await ds.getEnvelopes(MB, key, { cursor: 41, limit: 100 });
  assert.equal(got.envelopes[0]!.seq, 42);
  assert.deepEqual([...got.envelopes[0]!.payload], [0x68, 0x69]);
  const s = seen[0]!;
  const query = s.url.split("?")[1]!;
  assert.equal(query, `mailbox=${MB}&cursor=41&limit=100`);
  const token = parseToken(s.headers["authorization"]!.split(" ")[1]!);
  const bytes = signingBytes({ method: "chat.mls.ds.getEnvelopes", mailbox: MB, publicKey: token.publicKey, timestampMs: token.timestampMs, nonce: token.nonce, contentSha256: await sha256(new TextEncoder().encode(query)) });
  assert.ok(verifyToken(token, bytes));
});

test("EpochConflict carries its numbers and is transient; without them the answer is refused", async () => {
  const key = MailboxKey.fromSeed(new Uint8Array(32).fill(7));
  const env = [{ kind: "commit" as const, epoch: 4, payload: new Uint8Array([1]), nextKey: key.publicKey }];
  const ok = new DsClient("http://ds.invalid", { fetch: fakeFetch(409, { error: "EpochConflict", message: "m", currentEpoch: 5, currentSeq: 311 }, []) });
  const e = await ok.sendEnvelopes(MB, key, env).catch((x: unknown) => x);
  assert.ok(e instanceof EpochConflictError);
  assert.equal(e.currentEpoch, 5);
  assert.equal(e.currentSeq, 311);
  assert.equal(e.kind, "transient");
  const bad = new DsClient("http://ds.invalid", { fetch: fakeFetch(409, { error: "EpochConflict", message: "m" }, []) });
  await assert.rejects(bad.sendEnvelopes(MB, key, env), MalformedAnswerError);
});

test("error names and kinds follow the status (§11.14)", async () => {
  const key = MailboxKey.fromSeed(new Uint8Array(32).fill(7));
  for (const [status, name, kind] of [
    [401, "ReplayedRequest", "permanent"], [404, "MailboxNotFound", "permanent"], [429, "RateLimitExceeded", "transient"],
    [503, "ServiceUnavailable", "transient"], [501, "MethodNotImplemented", "permanent"], [400, "InvalidRequest", "permanent"],
  ] as const) {
    const ds = new DsClient("http://ds.invalid", { fetch: fakeFetch(status, { error: name, message: "x" }, []) });
    const e = await ds.getMailbox(MB, key).catch((x: unknown) => x);
    assert.ok(e instanceof XrpcError, name);
    assert.equal(e.error, name);
    assert.equal(e.status, status);
    assert.equal(e.kind, kind, name);
  }
  assert.equal(kindOfStatus(408), "transient");
  assert.equal(kindOfStatus(505), "permanent");
});

test("answers that break their lexicon are refused, never defaulted", async () => {
  const key = MailboxKey.fromSeed(new Uint8Array(32).fill(7));
  for (const answer of [
    { envelopes: [{ seq: 0, kind: "message", payload: { $bytes: "aGk" }, receivedAt: "2027-01-15T08:00:00.000Z" }], cursor: 0, headSeq: 0 },
    { envelopes: [{ seq: 1, kind: "message", payload: { $bytes: "aGk" }, receivedAt: "yesterday" }], cursor: 1, headSeq: 1 },
    { envelopes: [], cursor: -1, headSeq: 0 },
    { envelopes: [], cursor: 0 },
    "not json",
  ]) {
    const ds = new DsClient("http://ds.invalid", { fetch: fakeFetch(200, answer, []) });
    await assert.rejects(ds.getEnvelopes(MB, key), MalformedAnswerError);
  }
});

test("a connection failure is a transient NetworkError", async () => {
  const ds = new DsClient("http://127.0.0.1:9", { timeoutMs: 2000 });
  const e = await ds.describeServer().catch((x: unknown) => x);
  assert.ok(e instanceof NetworkError);
  assert.equal(e.kind, "transient");
});
