// Other accounts' KeyPackages and declarations (docs/spec.md §3.2, §3.3): verified against
// the DID's `#atproto` key whichever path delivered them — the DS's `getKeyPackages` or the
// account's own PDS. Steps 1–7 and the lexicon here; the MLS checks of step 8 (parse and
// validate the KeyPackage, its credential, suite and ref) and step 9 are the MLS layer's.
import { resolveDid, type DidDocument, type ResolverConfig } from "./did.js";
import { XrpcError } from "./errors.js";
import * as J from "./json.js";
import type { Did } from "./json.js";
import type { DidResult, ProvenRecord } from "./lexicon.js";
import { RecordProofError, type ProofRefusal } from "./proof/errors.js";
import { RevTracker, verifyRecordProof } from "./proof/verify.js";
import { PublicRepo } from "./pds.js";
import * as R from "./repo-records.js";

/** A KeyPackage record that passed §3.3 steps 1–7, its lexicon and its expiry. */
export interface VerifiedKeyPackage {
  readonly uri: string;
  readonly rkey: string;
  readonly cid: string;
  readonly rev: string;
  readonly record: R.KeyPackageRecord;
}

/** A record that was refused, and why. */
export interface RefusedRecord {
  readonly uri: string;
  readonly reason: ProofRefusal | "Lexicon" | "Expired" | "Uri";
}

/** What was verified for one account. */
export interface VerifiedAccount {
  readonly did: Did;
  readonly document: DidDocument;
  /** Absent: no declaration (proven absent, or none delivered). */
  readonly declaration?: R.DeclarationRecord;
  readonly keyPackages: readonly VerifiedKeyPackage[];
  readonly refused: readonly RefusedRecord[];
}

const TID_OR_SELF = /^([234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}|self)$/;

function splitUri(uri: string, did: Did, collection: string): string | undefined {
  const m = /^at:\/\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(uri);
  if (!m || m[1] !== did || m[2] !== collection || !TID_OR_SELF.test(m[3]!)) return undefined;
  return m[3];
}

type Proven = { rec: ProvenRecord; rkey: string; rev: string; record: { readonly [k: string]: unknown } };

/**
 * Verifies one DID's records, as `getKeyPackages` returned them or as read from its PDS.
 * A record that fails is listed in `refused`; the others still count. `now` decides expiry.
 */
export async function verifyAccountRecords(input: {
  readonly did: Did;
  readonly declaration?: ProvenRecord;
  readonly keyPackages: readonly ProvenRecord[];
  readonly resolver: ResolverConfig;
  readonly revs: RevTracker;
  readonly now?: Date;
}): Promise<VerifiedAccount> {
  const document = await resolveDid(input.did, input.resolver);
  const key = document.atprotoKey;
  if (key === undefined) throw new RecordProofError("DidDocument", "the DID document has no usable #atproto key");
  const refused: RefusedRecord[] = [];
  const proven: (Proven & { collection: string })[] = [];
  const all = [
    ...(input.declaration ? [{ rec: input.declaration, collection: R.COLLECTION.declaration }] : []),
    ...input.keyPackages.map((rec) => ({ rec, collection: R.COLLECTION.keyPackage })),
  ];
  for (const { rec, collection } of all) {
    const rkey = splitUri(rec.uri, input.did, collection);
    if (rkey === undefined) {
      refused.push({ uri: rec.uri, reason: "Uri" });
      continue;
    }
    try {
      const r = await verifyRecordProof({ proof: rec.proof, did: input.did, collection, rkey, key, expectedCid: rec.cid });
      if (!r.found) {
        refused.push({ uri: rec.uri, reason: "Absent" });
        continue;
      }
      proven.push({ rec, rkey, rev: r.rev, record: r.record, collection });
    } catch (e) {
      if (e instanceof RecordProofError) refused.push({ uri: rec.uri, reason: e.reason });
      else throw e;
    }
  }
  // Freshness (§3.3): admit revisions in ascending order; a proof older than one seen before is refused.
  proven.sort((a, b) => (a.rev < b.rev ? -1 : a.rev > b.rev ? 1 : 0));
  const now = (input.now ?? new Date()).getTime();
  let declaration: R.DeclarationRecord | undefined;
  const keyPackages: VerifiedKeyPackage[] = [];
  for (const p of proven) {
    try {
      input.revs.admit(input.did, p.rev);
    } catch {
      refused.push({ uri: p.rec.uri, reason: "StaleRev" });
      continue;
    }
    try {
      if (p.collection === R.COLLECTION.declaration) {
        declaration = R.parseDeclaration(p.record);
        continue;
      }
      const record = R.parseKeyPackageRecord(p.record);
      if (Date.parse(record.expiresAt) <= now) {
        refused.push({ uri: p.rec.uri, reason: "Expired" });
        continue;
      }
      keyPackages.push({ uri: p.rec.uri, rkey: p.rkey, cid: p.rec.cid, rev: p.rev, record });
    } catch (e) {
      if (e instanceof J.ShapeError) refused.push({ uri: p.rec.uri, reason: "Lexicon" });
      else throw e;
    }
  }
  return declaration === undefined
    ? { did: input.did, document, keyPackages, refused }
    : { did: input.did, document, declaration, keyPackages, refused };
}

/** Verifies an `ok` result of the DS's `getKeyPackages` (§6): the DS only gathers, the client checks. */
export function verifyDidResult(result: DidResult, resolver: ResolverConfig, revs: RevTracker, now?: Date): Promise<VerifiedAccount> {
  const base = { did: result.did, keyPackages: result.keyPackages, resolver, revs };
  const withDecl = result.declaration === undefined ? base : { ...base, declaration: result.declaration };
  return verifyAccountRecords(now === undefined ? withDecl : { ...withDecl, now });
}

/** Reads an account's KeyPackages from its own PDS (§3.2 steps 1–3) and verifies them. */
export async function keyPackagesFromPds(did: Did, resolver: ResolverConfig, revs: RevTracker, now?: Date): Promise<VerifiedAccount> {
  const document = await resolveDid(did, resolver);
  if (document.pds === undefined) throw new RecordProofError("DidDocument", "the DID document names no #atproto_pds");
  const repo = new PublicRepo(document.pds, did);
  const listed = await repo.listKeyPackages();
  const keyPackages: ProvenRecord[] = [];
  for (const r of listed) keyPackages.push({ uri: r.uri, cid: r.cid, proof: await repo.recordProof(R.COLLECTION.keyPackage, r.rkey) });
  const result = await verifyAccountRecords({ did, keyPackages, resolver, revs, ...(now ? { now } : {}) });
  // The declaration: a proof of absence, or a PDS answering RecordNotFound, is no declaration (§3.3).
  let proof: Uint8Array;
  try {
    proof = await repo.recordProof(R.COLLECTION.declaration, "self");
  } catch (e) {
    if (e instanceof XrpcError && e.error === "RecordNotFound") return result;
    throw e;
  }
  const key = result.document.atprotoKey!;
  const d = await verifyRecordProof({ proof, did, collection: R.COLLECTION.declaration, rkey: "self", key });
  if (!d.found) return result;
  revs.admit(did, d.rev);
  return { ...result, declaration: R.parseDeclaration(d.record) };
}
