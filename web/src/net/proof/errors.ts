// Why a record proof was refused (docs/spec.md §3.3, steps 1–7).

/** The step of §3.3 that failed. */
export type ProofRefusal =
  | "DidDocument" // step 1: no usable #atproto key
  | "Car" // step 2: not CAR v1, a block that does not hash to its CID, not one root
  | "Commit" // step 3: root not a canonical version-3 commit
  | "RepoDid" // step 4: the commit is another repo's
  | "Signature" // step 5: sig does not verify with the #atproto key (high-S and DER refused)
  | "MstPath" // step 6: a node missing, not canonical, keys out of order or at the wrong height
  | "KeyTooLong" // step 6: a key over 1024 bytes
  | "TooManyKeyBytes" // step 6: keys of a node over 256 KiB, or of the walk over 1 MiB
  | "Record" // step 7: record block not canonical, not an object, or of another $type
  | "CidMismatch" // the proven record is not the one claimed (its CID differs)
  | "Absent" // the proof shows the record does not exist
  | "StaleRev"; // a proof older than a revision already verified for this DID

/** A refused record proof; `reason` says which check failed. */
export class RecordProofError extends Error {
  override readonly name = "RecordProofError";
  constructor(readonly reason: ProofRefusal, detail: string) {
    super(`${reason}: ${detail}`);
  }
}
