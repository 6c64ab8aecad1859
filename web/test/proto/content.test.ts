// What the vectors do not show: content and blobs a reader must refuse.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as dagCbor from "@ipld/dag-cbor";
import { BlobError, openBlob, sealBlob } from "../../src/proto/attachment.js";
import { ContentError, decodeContent, encodeContent, type Content } from "../../src/proto/content.js";

const base: Content = { id: "a7kq2mxv4zt3nw5rhb6cjd2pfe", sentAt: "2026-11-24T12:00:00.000Z", body: { kind: "text", text: "hi" } };

test("content round-trips and a wrong $type, a long text or a bad datetime is refused", () => {
  assert.deepEqual(decodeContent(encodeContent(base)), base);
  const raw = (v: unknown) => dagCbor.encode(v);
  assert.throws(() => decodeContent(raw({ $type: "chat.mls.other", id: base.id, sentAt: base.sentAt, body: { $type: "chat.mls.content#text", text: "x" } })), ContentError);
  assert.throws(() => decodeContent(encodeContent({ ...base, body: { kind: "text", text: "" } })), /shorter than 1 bytes/);
  assert.throws(() => decodeContent(encodeContent({ ...base, body: { kind: "reaction", target: base.id, value: "ab" } })), /graphemes/);
  assert.throws(() => decodeContent(encodeContent({ ...base, sentAt: "2026-11-24 12:00" })), /datetime/);
});

test("non-canonical DAG-CBOR (map keys out of order) is refused", () => {
  const text = (t: string) => {
    const b = new TextEncoder().encode(t);
    assert.ok(b.length < 24);
    return [0x60 + b.length, ...b];
  };
  // {"b": 1, "a": 2}: equal-length keys must be in bytewise order, "a" first.
  const canonical = Uint8Array.from([0xa2, ...text("a"), 0x02, ...text("b"), 0x01]);
  const swapped = Uint8Array.from([0xa2, ...text("b"), 0x01, ...text("a"), 0x02]);
  assert.throws(() => decodeContent(canonical), /not an object|\$type/);
  assert.throws(() => decodeContent(swapped), /not canonical/);
  // Trailing bytes after the object are refused too.
  assert.throws(() => decodeContent(Uint8Array.from([...encodeContent(base), 0x00])), ContentError);
});

test("an unknown body type is kept and encodes to the same bytes", () => {
  const unknown = dagCbor.encode({ $type: "chat.mls.content", id: base.id, sentAt: base.sentAt, body: { $type: "com.example.poll", q: "tea?" }, fallbackText: "poll" });
  const c = decodeContent(unknown);
  assert.equal(c.body.kind, "unknown");
  assert.deepEqual(encodeContent(c), unknown);
});

test("a blob with a changed byte, a wrong size or non-zero padding is refused", async () => {
  const key = new Uint8Array(32).fill(7);
  const nonce = new Uint8Array(12).fill(9);
  const file = new TextEncoder().encode("hello");
  const sealed = await sealBlob(file, key, nonce);
  const ref = { key, nonce, digest: sealed.digest, size: file.length };
  assert.deepEqual(await openBlob(sealed.ciphertext, ref), file);
  const changed = Uint8Array.from(sealed.ciphertext);
  changed[0] = (changed[0] ?? 0) ^ 1;
  await assert.rejects(openBlob(changed, ref), BlobError);
  await assert.rejects(openBlob(sealed.ciphertext, { ...ref, size: 300 }), /length/);
  // Claiming fewer bytes than were encrypted leaves a non-zero byte in the padding.
  await assert.rejects(openBlob(sealed.ciphertext, { ...ref, size: 4 }), /padding/);
});
