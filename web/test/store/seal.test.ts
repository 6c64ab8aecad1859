// The store's cryptography without IndexedDB (Node's WebCrypto): ids, sealed names and
// values, their binding to context, and the key check. The IndexedDB layer is tested in
// Chromium (test/store/run.mjs).
import { test } from "node:test";
import assert from "node:assert/strict";

import { StoreCorrupt, StoreInvalidName, StoreWrongKey } from "../../src/store/errors.js";
import {
  generateStoreKeys,
  makeKeyCheck,
  NONCE_BYTES,
  openName,
  openValue,
  parseStoreKeys,
  recordId,
  sealName,
  sealValue,
  TAG_BYTES,
  verifyKeyCheck,
} from "../../src/store/seal.js";

const text = new TextEncoder();

test("a value opens under its own name only, and each seal has a fresh nonce", async () => {
  const keys = await generateStoreKeys();
  const value = text.encode("MARKER message text");
  const a = await sealValue(keys, "group/a", value);
  const b = await sealValue(keys, "group/a", value);
  assert.equal(a.length, NONCE_BYTES + value.length + TAG_BYTES);
  assert.notDeepEqual(a.slice(0, NONCE_BYTES), b.slice(0, NONCE_BYTES));
  assert.deepEqual(await openValue(keys, "group/a", a), value);
  await assert.rejects(openValue(keys, "group/b", a), StoreCorrupt);
  const other = await generateStoreKeys();
  await assert.rejects(openValue(other, "group/a", a), StoreCorrupt);
});

test("any flipped byte of a sealed value is StoreCorrupt", async () => {
  const keys = await generateStoreKeys();
  const sealed = await sealValue(keys, "n", text.encode("value"));
  for (let i = 0; i < sealed.length; i++) {
    const bad = sealed.slice();
    bad[i] = (bad[i] ?? 0) ^ 0x01;
    await assert.rejects(openValue(keys, "n", bad), StoreCorrupt, `byte ${i}`);
  }
  await assert.rejects(openValue(keys, "n", sealed.slice(0, NONCE_BYTES + TAG_BYTES - 1)), StoreCorrupt);
  await assert.rejects(openValue(keys, "n", "not bytes"), StoreCorrupt);
});

test("record ids are keyed, stable and hide the name", async () => {
  const keys = await generateStoreKeys();
  const name = "group/did:plc:abcdefghijklmnop";
  const id = await recordId(keys, name);
  assert.match(id, /^[0-9a-f]{64}$/);
  assert.equal(await recordId(keys, name), id);
  assert.notEqual(await recordId(keys, name + "x"), id);
  assert.notEqual(await recordId(await generateStoreKeys(), name), id);
  assert.ok(!id.includes(Buffer.from(name).toString("hex")));
});

test("a sealed name opens under its id only", async () => {
  const keys = await generateStoreKeys();
  const idA = await recordId(keys, "a");
  const idB = await recordId(keys, "b");
  const sealed = await sealName(keys, idA, "a");
  assert.equal(await openName(keys, idA, sealed), "a");
  await assert.rejects(openName(keys, idB, sealed), StoreCorrupt);
  // A name sealed under a wrong id (as a bug or a forger with the key would) is refused too.
  const mislabelled = await sealName(keys, idB, "a");
  await assert.rejects(openName(keys, idB, mislabelled), StoreCorrupt);
});

test("names must be non-empty, bounded and well-formed", async () => {
  const keys = await generateStoreKeys();
  await assert.rejects(recordId(keys, ""), StoreInvalidName);
  await assert.rejects(recordId(keys, "x".repeat(1025)), StoreInvalidName);
  await assert.rejects(recordId(keys, "a\uD800"), StoreInvalidName);
  assert.match(await recordId(keys, "x".repeat(1024)), /^[0-9a-f]{64}$/);
});

test("the key check accepts the store's keys and refuses others as StoreWrongKey", async () => {
  const keys = await generateStoreKeys();
  const check = await makeKeyCheck(keys);
  await verifyKeyCheck(keys, check);
  const other = await generateStoreKeys();
  await assert.rejects(verifyKeyCheck(other, check), StoreWrongKey);
  await assert.rejects(verifyKeyCheck({ aead: keys.aead, mac: other.mac }, check), StoreWrongKey);
  await assert.rejects(verifyKeyCheck({ aead: other.aead, mac: keys.mac }, check), StoreWrongKey);
  await assert.rejects(verifyKeyCheck(keys, { tag: check.tag }), StoreCorrupt);
});

test("generated keys are non-extractable; extractable or foreign keys are refused", async () => {
  const keys = await generateStoreKeys();
  assert.equal(keys.aead.extractable, false);
  assert.equal(keys.mac.extractable, false);
  await assert.rejects(crypto.subtle.exportKey("raw", keys.aead));
  await assert.rejects(crypto.subtle.exportKey("raw", keys.mac));
  assert.deepEqual(parseStoreKeys(keys), keys);
  const extractable = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, true, ["encrypt", "decrypt"]);
  assert.throws(() => parseStoreKeys({ aead: extractable, mac: keys.mac }), StoreCorrupt);
  const short = await crypto.subtle.generateKey({ name: "AES-GCM", length: 128 }, false, ["encrypt", "decrypt"]);
  assert.throws(() => parseStoreKeys({ aead: short, mac: keys.mac }), StoreCorrupt);
  assert.throws(() => parseStoreKeys({ aead: keys.mac, mac: keys.aead }), StoreCorrupt);
  assert.throws(() => parseStoreKeys(null), StoreCorrupt);
});
