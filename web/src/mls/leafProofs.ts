// The leaf-proofs custom proposal 0xF0A8 (docs/spec.md §11.13): the KeyPackage record
// proofs the committer verified, one per Add, committed by value inside the encrypted commit.
import { LEAF_PROOFS_PROPOSAL } from "./constants.js";
import { DecodeError, Reader, putUint, putVector, utf8Bytes } from "./tls.js";

/** The only version written and read. */
export const LEAF_PROOFS_VERSION = 1;
const MAX_REF = 64;
const MAX_RKEY = 512;
const MAX_PROOF = 1 << 20;
/** The whole vector is bounded only by the varint (as in the reference client): the message that carries it is bounded by the DS. */
const MAX_PROOFS_BYTES = 0x3fffffff;

/** One added KeyPackage's proof. */
export interface LeafProof {
  /** KeyPackageRef of the added KeyPackage (RFC 9420 §5.2). */
  readonly keyPackageRef: Uint8Array;
  /** Its record key in `chat.mls.keyPackage`. */
  readonly rkey: string;
  /** The com.atproto.sync.getRecord CAR. */
  readonly proof: Uint8Array;
}

/** The proposal data (`LeafProofs`). */
export function encodeLeafProofs(proofs: readonly LeafProof[]): Uint8Array {
  const inner: number[] = [];
  for (const p of proofs) {
    const rkey = utf8Bytes(p.rkey);
    if (p.keyPackageRef.length > MAX_REF || rkey.length > MAX_RKEY || p.proof.length > MAX_PROOF) {
      throw new RangeError("leaf proof: a field over its limit");
    }
    putVector(inner, p.keyPackageRef);
    putVector(inner, rkey);
    putVector(inner, p.proof);
  }
  const out: number[] = [];
  putUint(out, LEAF_PROOFS_VERSION, 1);
  putVector(out, Uint8Array.from(inner));
  return Uint8Array.from(out);
}

/** Parses the proposal data; refuses what §11.13 says readers refuse. */
export function decodeLeafProofs(bytes: Uint8Array): LeafProof[] {
  const r = new Reader(bytes);
  const version = r.uint(1, "version");
  if (version !== LEAF_PROOFS_VERSION) throw new DecodeError(`leaf proofs version ${version}`);
  const list = new Reader(r.vector(MAX_PROOFS_BYTES, "proofs"));
  r.end("leaf proofs");
  const out: LeafProof[] = [];
  while (!list.atEnd) {
    const keyPackageRef = list.vector(MAX_REF, "keyPackageRef");
    const rkey = list.text(MAX_RKEY, "rkey");
    const proof = list.vector(MAX_PROOF, "proof");
    out.push({ keyPackageRef, rkey, proof });
  }
  return out;
}

/** The custom proposal carrying `proofs`. */
export function leafProofsProposal(proofs: readonly LeafProof[]): { proposalType: number; proposalData: Uint8Array } {
  return { proposalType: LEAF_PROOFS_PROPOSAL, proposalData: encodeLeafProofs(proofs) };
}
