// Passphrase-derived store keys (Node's WebCrypto), checked against an independent
// computation with node:crypto's PBKDF2 and HKDF from the formula in decision 0028.
import { test } from "node:test";
import assert from "node:assert/strict";
import { hkdfSync, pbkdf2Sync } from "node:crypto";

import { StoreCorrupt, StorePassphraseRequired } from "../../src/store/errors.js";
import {
  INSECURE_PBKDF2_ITERATIONS_FOR_TESTS,
  MAX_PBKDF2_ITERATIONS,
  newKdfParams,
  parseKdfParams,
  passphraseKeys,
} from "../../src/store/passphrase.js";
import { openValue, recordId, sealValue, type StoreKeys } from "../../src/store/seal.js";

const text = new TextEncoder();

/** The formula of decision 0028 with node:crypto, as extractable-free raw bytes. */
async function expectedKeys(passphrase: string, salt: Uint8Array, iterations: number): Promise<StoreKeys> {
  const ikm = pbkdf2Sync(Buffer.from(passphrase, "utf8"), salt, iterations, 32, "sha256");
  const aead = Buffer.from(hkdfSync("sha256", ikm, Buffer.alloc(0), "atmls-web-store v1 aead", 32));
  const mac = Buffer.from(hkdfSync("sha256", ikm, Buffer.alloc(0), "atmls-web-store v1 mac", 32));
  return {
    aead: await crypto.subtle.importKey("raw", aead, "AES-GCM", false, ["encrypt", "decrypt"]),
    mac: await crypto.subtle.importKey("raw", mac, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]),
  };
}

test("passphrase keys follow the documented derivation and are non-extractable", async () => {
  const params = newKdfParams(INSECURE_PBKDF2_ITERATIONS_FOR_TESTS);
  const keys = await passphraseKeys("correct horse", params);
  assert.equal(keys.aead.extractable, false);
  assert.equal(keys.mac.extractable, false);
  const expected = await expectedKeys("correct horse", params.salt, params.iterations);
  const sealed = await sealValue(keys, "n", text.encode("value"));
  assert.deepEqual(await openValue(expected, "n", sealed), text.encode("value"));
  assert.equal(await recordId(keys, "n"), await recordId(expected, "n"));
});

test("another passphrase, salt or iteration count gives other keys", async () => {
  const params = newKdfParams(INSECURE_PBKDF2_ITERATIONS_FOR_TESTS);
  const keys = await passphraseKeys("correct horse", params);
  const id = await recordId(keys, "n");
  const sealed = await sealValue(keys, "n", text.encode("value"));
  for (const [pass, p] of [
    ["correct horsE", params],
    ["correct horse", { ...params, salt: newKdfParams(1).salt }],
    ["correct horse", { ...params, iterations: params.iterations + 1 }],
  ] as const) {
    const other = await passphraseKeys(pass, p);
    assert.notEqual(await recordId(other, "n"), id);
    await assert.rejects(openValue(other, "n", sealed), StoreCorrupt);
  }
  await assert.rejects(passphraseKeys("", params), StorePassphraseRequired);
});

test("stored KDF parameters are parsed with bounds; new ones check theirs", () => {
  const params = newKdfParams(5);
  assert.deepEqual(parseKdfParams(params), params);
  assert.equal(newKdfParams().iterations, 600_000);
  assert.throws(() => parseKdfParams({ ...params, iterations: MAX_PBKDF2_ITERATIONS + 1 }), StoreCorrupt);
  assert.throws(() => parseKdfParams({ ...params, iterations: 0 }), StoreCorrupt);
  assert.throws(() => parseKdfParams({ ...params, iterations: 1.5 }), StoreCorrupt);
  assert.throws(() => parseKdfParams({ ...params, salt: new Uint8Array(15) }), StoreCorrupt);
  assert.throws(() => parseKdfParams({ ...params, kdf: "argon2id" }), StoreCorrupt);
  assert.throws(() => parseKdfParams({ ...params, version: 2 }), StoreCorrupt);
  assert.throws(() => parseKdfParams("x"), StoreCorrupt);
  assert.throws(() => newKdfParams(0), RangeError);
  assert.throws(() => newKdfParams(MAX_PBKDF2_ITERATIONS + 1), RangeError);
});
