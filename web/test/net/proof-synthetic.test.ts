// Record proofs built here, signed with a key of the test, to reach the MST and signature
// rules of docs/spec.md §3.3 that recorded proofs do not: maximal prefix compression, key
// order, key heights, key size, high-S signatures.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as dagCbor from "@ipld/dag-cbor";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { RecordProofError } from "../../src/net/proof/errors.js";
import { keyHeight } from "../../src/net/proof/mst.js";
import { verifyRecordProof } from "../../src/net/proof/verify.js";

const DID = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
const COLLECTION = "chat.mls.keyPackage";
const te = new TextEncoder();
const sk = secp256k1.utils.randomSecretKey();
const key = { curve: "secp256k1" as const, publicKey: secp256k1.getPublicKey(sk) };

async function block(value: unknown): Promise<{ cid: CID; bytes: Uint8Array }> {
  const bytes = dagCbor.encode(value);
  return { cid: CID.create(1, 0x71, await sha256.digest(bytes)), bytes };
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

function car(root: CID, blocks: { cid: CID; bytes: Uint8Array }[]): Uint8Array {
  const header = dagCbor.encode({ version: 1, roots: [root] });
  const parts: number[] = [...varint(header.length), ...header];
  for (const b of blocks) parts.push(...varint(b.cid.bytes.length + b.bytes.length), ...b.cid.bytes, ...b.bytes);
  return new Uint8Array(parts);
}

/** Keys `chat.mls.keyPackage/<tid>` of MST height `h`, in order. */
async function keysOfHeight(h: number, n: number): Promise<string[]> {
  const out: string[] = [];
  const alphabet = "234567abcdefghijklmnopqrstuvwxyz";
  for (let i = 0; out.length < n && i < 100000; i++) {
    const tid = `3kp${alphabet[(i >> 10) % 32]}${alphabet[(i >> 5) % 32]}${alphabet[i % 32]}aaaaaaa`;
    const k = `${COLLECTION}/${tid}`;
    if ((await keyHeight(te.encode(k))) === h) out.push(k);
  }
  return out.sort();
}

type RawEntry = { p: number; k: Uint8Array; v: CID; t: CID | null };

/** Builds entries with maximal prefix compression (or the given prefix lengths). */
function entries(keys: string[], v: CID, prefixes?: number[]): RawEntry[] {
  let prev = new Uint8Array(0);
  return keys.map((ks, i) => {
    const k = te.encode(ks);
    let p = 0;
    while (p < prev.length && p < k.length && prev[p] === k[p]) p++;
    if (prefixes?.[i] !== undefined) p = prefixes[i]!;
    prev = k;
    return { p, k: k.slice(p), v, t: null };
  });
}

async function proofFor(nodeEntries: RawEntry[], record: unknown, highS = false): Promise<Uint8Array> {
  const rec = await block(record);
  const node = await block({ l: null, e: nodeEntries.map((e) => ({ ...e, v: rec.cid })) });
  const unsigned = { did: DID, version: 3, data: node.cid, rev: "3kpaaaaaaaaa2", prev: null };
  let sig = secp256k1.sign(dagCbor.encode(unsigned), sk, { prehash: true, lowS: true });
  if (highS) {
    const s = secp256k1.Signature.fromBytes(sig);
    sig = new secp256k1.Signature(s.r, secp256k1.Point.CURVE().n - s.s).toBytes();
  }
  const commit = await block({ ...unsigned, sig });
  return car(commit.cid, [commit, node, rec]);
}

const record = { $type: COLLECTION, note: "synthetic" };

async function reason(proof: Uint8Array, rkey: string): Promise<string> {
  try {
    const r = await verifyRecordProof({ proof, did: DID, collection: COLLECTION, rkey, key });
    return r.found ? "found" : "absent";
  } catch (e) {
    if (e instanceof RecordProofError) return e.reason;
    throw e;
  }
}

test("synthetic proofs: the well-formed one verifies; each broken rule is refused", async () => {
  const keys = await keysOfHeight(0, 3);
  assert.equal(keys.length, 3);
  const rkey = keys[1]!.split("/")[1]!;
  const placeholder = CID.parse("bafyreih62nrofah3nuayxelyruvxtefmb2pyhhnmq5dbcydc5r3vuc7k34");
  const good = entries(keys, placeholder);
  assert.equal(await reason(await proofFor(good, record), rkey), "found");
  // Absent: a key between the entries, with no subtree in the gap.
  assert.equal(await reason(await proofFor(good, record), `${rkey.slice(0, -1)}z`), "absent");

  const shorter = good.map((e) => e.p);
  shorter[1] = shorter[1]! - 1;
  assert.equal(await reason(await proofFor(entries(keys, placeholder, shorter), record), rkey), "MstPath", "prefix compression not maximal");
  assert.equal(await reason(await proofFor(entries([keys[1]!, keys[0]!, keys[2]!], placeholder), record), rkey), "MstPath", "keys out of order");
  const [high] = await keysOfHeight(1, 1);
  const mixed = [...keys, high!].sort();
  assert.equal(await reason(await proofFor(entries(mixed, placeholder), record), rkey), "MstPath", "a key of another height");
  const long = `${COLLECTION}/${"a".repeat(1100)}`;
  assert.equal(await reason(await proofFor(entries([...keys, long].sort(), placeholder), record), rkey), "KeyTooLong");
  assert.equal(await reason(await proofFor(good, record, true), rkey), "Signature", "high-S");
  assert.equal(await reason(await proofFor(good, { $type: "chat.mls.device" }), rkey), "Record", "another $type");
});
