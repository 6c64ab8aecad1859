// The text forms of bytes (docs/spec.md §2): one text form per byte string.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EncodingError, fromBase32, fromBase64, toBase32, toBase64, vl } from "../../src/proto/bytes.js";

test("base64 without padding round-trips; padding is accepted; non-zero trailing bits are refused", () => {
  for (let n = 0; n < 8; n++) {
    const b = Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 0xff);
    assert.equal(toBase64(b), Buffer.from(b).toString("base64").replace(/=+$/, ""));
    assert.deepEqual(fromBase64(toBase64(b)), b);
    assert.deepEqual(fromBase64(Buffer.from(b).toString("base64")), b);
  }
  assert.throws(() => fromBase64("AB"), EncodingError); // 0x00 with trailing bits 0001
  assert.throws(() => fromBase64("A"), EncodingError);
  assert.throws(() => fromBase64("AA=A"), EncodingError);
  assert.throws(() => fromBase64("A-"), EncodingError);
});

test("lowercase base32 round-trips and refuses upper case and non-zero trailing bits", () => {
  const b = Uint8Array.of(1, 2, 3, 4, 5, 6, 7);
  assert.deepEqual(fromBase32(toBase32(b)), b);
  assert.throws(() => fromBase32(toBase32(b).toUpperCase()), EncodingError);
  assert.throws(() => fromBase32("ab"), EncodingError);
});

test("MLS varint prefixes are minimal", () => {
  assert.deepEqual(vl(new Uint8Array(3)).subarray(0, 1), Uint8Array.of(3));
  assert.deepEqual(vl(new Uint8Array(64)).subarray(0, 2), Uint8Array.of(0x40, 0x40));
  assert.deepEqual(vl(new Uint8Array(16384)).subarray(0, 4), Uint8Array.of(0x80, 0, 0x40, 0));
});
