// Why a browser device publishes 0x0001 only (docs/spec.md §11.19): ts-mls 1.6.4 has no MLS
// cipher suite 0x004D with atmls's algorithms, though its X-Wing HPKE KEM is the same. These
// facts fail when ts-mls changes them: then X-Wing groups in the browser are worth a new look.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ciphersuites, getCiphersuiteFromName } from "ts-mls";
import { suiteImpl } from "../../src/proto/key-package-record.js";
import { SUITE_XWING_CHACHA20, UnsupportedSuiteError, hpkeOf } from "../../src/proto/sealed.js";

test("ts-mls's code point 0x004D is another suite, and its X-Wing suites hash with SHA-512", () => {
  const byId = new Map(Object.entries(ciphersuites).map(([name, id]) => [id as number, name]));
  assert.equal(byId.get(SUITE_XWING_CHACHA20), "MLS_128_MLKEM512_AES128GCM_SHA256_Ed25519");
  const xwing = Object.keys(ciphersuites).filter((n) => n.includes("XWING"));
  assert.ok(xwing.length > 0);
  for (const name of xwing) {
    const cs = getCiphersuiteFromName(name as keyof typeof ciphersuites);
    assert.equal(cs.hpke.kem, "X-Wing");
    assert.notEqual(cs.hpke.kdf, "HKDF-SHA256", `${name} has atmls's KDF: revisit §11.19 for browsers`);
  }
});

test("the MLS layer refuses 0x004D; the HPKE layer has atmls's X-Wing (KEM 0x647A)", async () => {
  await assert.rejects(suiteImpl(SUITE_XWING_CHACHA20), UnsupportedSuiteError);
  assert.equal(hpkeOf(SUITE_XWING_CHACHA20).kem.id, 0x647a);
});
