// Verifying a record proof (docs/spec.md §3.3 steps 2–7): the CAR of
// `com.atproto.sync.getRecord`, its signed commit, the MST path, and the record block,
// against the DID's `#atproto` key. Also the highest-`rev` freshness rule.
import * as dagCbor from "@ipld/dag-cbor";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { p256 } from "@noble/curves/nist.js";
import { CID } from "multiformats/cid";
import type { AtprotoKey } from "../did.js";
import { readCar, decodeCanonical } from "./car.js";
import { RecordProofError } from "./errors.js";
import { mstLookup } from "./mst.js";

const TID_RE = /^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$/;

/** What a proof shows. */
export type ProvenRecordContent =
  | { readonly found: true; readonly rev: string; readonly cid: CID; readonly record: { readonly [k: string]: unknown } }
  | { readonly found: false; readonly rev: string };

/** The signed repo commit at the root of a proof. */
interface Commit {
  readonly did: string;
  readonly rev: string;
  readonly data: CID;
  readonly sig: Uint8Array;
  readonly unsigned: Uint8Array;
}

function parseCommit(value: unknown): Commit {
  if (typeof value !== "object" || value === null) throw new RecordProofError("Commit", "not a map");
  const o = value as Record<string, unknown>;
  const keys = Object.keys(o).sort().join(",");
  if (keys !== "data,did,prev,rev,sig,version") throw new RecordProofError("Commit", "not {did, version, data, rev, prev, sig}");
  if (o["version"] !== 3) throw new RecordProofError("Commit", "version is not 3");
  const did = o["did"];
  const rev = o["rev"];
  const sig = o["sig"];
  const data = CID.asCID(o["data"]);
  if (typeof did !== "string" || !/^did:[a-z]+:[a-zA-Z0-9._:%-]+$/.test(did)) throw new RecordProofError("Commit", "did is not a DID");
  if (typeof rev !== "string" || !TID_RE.test(rev)) throw new RecordProofError("Commit", "rev is not a TID");
  if (data === null) throw new RecordProofError("Commit", "data is not a link");
  if (o["prev"] !== null && CID.asCID(o["prev"]) === null) throw new RecordProofError("Commit", "prev is neither null nor a link");
  if (!(sig instanceof Uint8Array)) throw new RecordProofError("Commit", "sig is not bytes");
  const { sig: _sig, ...rest } = o;
  return { did, rev, data, sig, unsigned: dagCbor.encode(rest) };
}

/** ECDSA over SHA-256, 64-byte r‖s, low-S only (high-S and DER refused). */
export function verifyAtprotoSignature(key: AtprotoKey, message: Uint8Array, sig: Uint8Array): boolean {
  if (sig.length !== 64) return false;
  const curve = key.curve === "secp256k1" ? secp256k1 : p256;
  try {
    return curve.verify(sig, message, key.publicKey, { prehash: true, lowS: true, format: "compact" });
  } catch {
    return false;
  }
}

/**
 * Verifies `proof` for `collection/rkey` of `did` with the `#atproto` key (§3.3 steps 2–7).
 * With `expectedCid` (the CID a listing or the DS named) an included record must have it.
 */
export async function verifyRecordProof(input: {
  readonly proof: Uint8Array;
  readonly did: string;
  readonly collection: string;
  readonly rkey: string;
  readonly key: AtprotoKey;
  readonly expectedCid?: string;
}): Promise<ProvenRecordContent> {
  const car = await readCar(input.proof);
  const rootBytes = car.blocks.get(car.root.toString());
  if (rootBytes === undefined) throw new RecordProofError("Car", "the root block is missing");
  const commit = parseCommit(decodeCanonical(rootBytes, "Commit"));
  if (commit.did !== input.did) throw new RecordProofError("RepoDid", "the commit is of another repo");
  if (!verifyAtprotoSignature(input.key, commit.unsigned, commit.sig)) {
    throw new RecordProofError("Signature", "the commit signature does not verify with the #atproto key");
  }
  const path = new TextEncoder().encode(`${input.collection}/${input.rkey}`);
  const found = await mstLookup(car.blocks, commit.data, path);
  if (!found.found) return { found: false, rev: commit.rev };
  if (input.expectedCid !== undefined && found.cid.toString() !== input.expectedCid) {
    throw new RecordProofError("CidMismatch", "the proven record has another CID than claimed");
  }
  const bytes = car.blocks.get(found.cid.toString());
  if (bytes === undefined) throw new RecordProofError("Record", "the record block is missing");
  const record = decodeCanonical(bytes, "Record");
  if (typeof record !== "object" || record === null || Array.isArray(record) || record instanceof Uint8Array) {
    throw new RecordProofError("Record", "the record is not an object");
  }
  const o = record as Record<string, unknown>;
  if (o["$type"] !== input.collection) throw new RecordProofError("Record", "the record's $type is not its collection");
  return { found: true, rev: commit.rev, cid: found.cid, record: o };
}

/** The highest `rev` verified per DID (§3.3 "Freshness"): older proofs are refused. */
export class RevTracker {
  readonly #highest = new Map<string, string>();

  /** Records `rev` for `did`, or throws `StaleRev` when a higher one was already seen. */
  admit(did: string, rev: string): void {
    const seen = this.#highest.get(did);
    if (seen !== undefined && rev < seen) throw new RecordProofError("StaleRev", "a proof older than one already verified");
    if (seen === undefined || rev > seen) this.#highest.set(did, rev);
  }
}
