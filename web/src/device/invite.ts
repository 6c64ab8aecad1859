// Choosing the KeyPackages to add (docs/spec.md §3.3, §11.9): every account's proofs from
// the device's DS (`getKeyPackages`), each verified against the DID's #atproto key (steps
// 1–7), its MLS content checked (step 8); per device id, one-time packages in random order
// and not used before by this device, the last-resort one last; packages expiring within the
// hour and other suites skipped (a browser device adds 0x0001 packages only, §11.19).
import type { KeyPackage } from "ts-mls";
import type { Invitee } from "../mls/commit.js";
import type { ResolverConfig } from "../net/did.js";
import type { DsClient } from "../net/ds.js";
import type { Did } from "../net/json.js";
import { DidResolutionError, resolveDid } from "../net/did.js";
import { MalformedAnswerError, NetworkError, XrpcError } from "../net/errors.js";
import { verifyDidResult } from "../net/keypackages.js";
import type { DidResult, MailboxRef, ProvenRecord } from "../net/lexicon.js";
import { PublicRepo } from "../net/pds.js";
import * as R from "../net/repo-records.js";
import type { RevTracker } from "../net/proof/verify.js";
import { KeyPackageRefusal, readKeyPackage } from "../proto/key-package-record.js";
import type { KeyPackageRecord } from "../proto/records.js";

/** One device to add, with what its welcome needs. */
export interface Candidate extends Invitee {
  readonly did: string;
  readonly deviceId: string;
  readonly inbox: MailboxRef;
  readonly lastResort: boolean;
  readonly expiresAt: number;
  readonly keyPackage: KeyPackage;
}

/** Why an account gave no device to add. */
export interface AccountRefusal {
  readonly did: string;
  readonly reason: string;
}

const HOUR = 3_600_000;

function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = crypto.getRandomValues(new Uint32Array(1))[0]! % (i + 1);
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/**
 * The devices of `dids` to add: one verified package per device id for which `wanted`
 * holds; `used` holds the refs (hex) of one-time packages this device already committed.
 */
export async function gatherCandidates(input: {
  readonly ds: DsClient;
  readonly dids: readonly string[];
  readonly resolver: ResolverConfig;
  readonly revs: RevTracker;
  readonly used: ReadonlySet<string>;
  readonly wanted: (did: string, deviceId: string) => boolean;
  /** The device's own account: read from its PDS (§3.2; the DS's answer may be a minute old), no declaration needed. */
  readonly own?: string;
}): Promise<{ candidates: Candidate[]; refused: AccountRefusal[] }> {
  const candidates: Candidate[] = [];
  const refused: AccountRefusal[] = [];
  const others = input.dids.filter((d) => d !== input.own);
  const results = others.length === 0 ? [] : await fromDsOrPds(input.ds, others, input.resolver);
  if (input.own !== undefined && input.dids.includes(input.own)) results.push(await fromPds(input.own, input.resolver));
  const now = Date.now();
  for (const result of results) {
    if (result.status !== "ok") {
      refused.push({ did: result.did, reason: result.status });
      continue;
    }
    const account = await verifyDidResult(result, input.resolver, input.revs);
    if (result.did === input.own) {
      // one's own account: its declaration is not a condition
    } else if (account.declaration === undefined) {
      refused.push({ did: result.did, reason: "NoDeclaration" });
      continue;
    } else if (account.declaration.invitePolicy !== "anyone") {
      refused.push({ did: result.did, reason: "InviteRefused" });
      continue;
    }
    const proofs = new Map(result.keyPackages.map((p) => [p.uri, p.proof]));
    const byDevice = new Map<string, Candidate[]>();
    for (const v of account.keyPackages) {
      if (v.record.ciphersuite !== 1 || Date.parse(v.record.expiresAt) - HOUR <= now) continue;
      if (!input.wanted(result.did, v.record.deviceId)) continue;
      const hexRef = Array.from(v.record.keyPackageRef, (x) => x.toString(16).padStart(2, "0")).join("");
      if (!v.record.lastResort && input.used.has(hexRef)) continue;
      let keyPackage: KeyPackage;
      try {
        keyPackage = await readKeyPackage(v.record as unknown as KeyPackageRecord, result.did);
      } catch (e) {
        if (e instanceof KeyPackageRefusal) continue;
        throw e;
      }
      const proof = proofs.get(v.uri);
      if (proof === undefined) continue;
      const c: Candidate = {
        did: result.did,
        deviceId: v.record.deviceId,
        inbox: v.record.inbox,
        lastResort: v.record.lastResort,
        expiresAt: Date.parse(v.record.expiresAt),
        keyPackage,
        keyPackageRef: v.record.keyPackageRef,
        rkey: v.rkey,
        proof,
      };
      byDevice.set(c.deviceId, [...(byDevice.get(c.deviceId) ?? []), c]);
    }
    if (byDevice.size === 0) refused.push({ did: result.did, reason: "NoKeyPackage" });
    for (const list of byDevice.values()) {
      const ordered = [...shuffle(list.filter((c) => !c.lastResort)), ...list.filter((c) => c.lastResort)];
      if (ordered[0] !== undefined) candidates.push(ordered[0]);
    }
  }
  return { candidates, refused };
}

/**
 * The accounts' records from the device's DS (`getKeyPackages`, one request), each account
 * the DS could not gather (a status other than `ok`), or all of them when the DS request
 * fails, read from its own PDS instead (§3.2: the DS's answer is only a hint). An account
 * whose PDS cannot be read either keeps the DS's status.
 */
async function fromDsOrPds(ds: DsClient, dids: readonly string[], resolver: ResolverConfig): Promise<DidResult[]> {
  let gathered: readonly DidResult[];
  try {
    gathered = await ds.getKeyPackages(dids as Did[]);
  } catch (e) {
    if (!(e instanceof XrpcError || e instanceof NetworkError || e instanceof MalformedAnswerError)) throw e;
    gathered = dids.map((did) => ({ did: did as Did, status: "unreachable", keyPackages: [] }));
  }
  const out: DidResult[] = [];
  for (const result of gathered) {
    if (result.status === "ok" || !dids.includes(result.did)) {
      out.push(result);
      continue;
    }
    try {
      out.push(await fromPds(result.did, resolver, true));
    } catch (e) {
      if (!(e instanceof XrpcError || e instanceof NetworkError || e instanceof MalformedAnswerError || e instanceof DidResolutionError)) throw e;
      out.push(result);
    }
  }
  return out;
}

/**
 * An account's KeyPackage records and their proofs read from its own PDS (§3.2 steps 1–3),
 * with its declaration's proof when `withDeclaration` (none when the PDS has no such record).
 */
async function fromPds(did: string, resolver: ResolverConfig, withDeclaration = false): Promise<DidResult> {
  const doc = await resolveDid(did as Did, resolver);
  if (doc.pds === undefined) return { did: did as Did, status: "notFound", keyPackages: [] };
  const repo = new PublicRepo(doc.pds, did as Did);
  const keyPackages: ProvenRecord[] = [];
  for (const r of await repo.listKeyPackages()) {
    keyPackages.push({ uri: r.uri, cid: r.cid, proof: await repo.recordProof(R.COLLECTION.keyPackage, r.rkey) });
  }
  const listed = withDeclaration ? await repo.declarationRef() : undefined;
  if (listed === undefined) return { did: did as Did, status: "ok", keyPackages };
  const declaration: ProvenRecord = { uri: listed.uri, cid: listed.cid, proof: await repo.recordProof(R.COLLECTION.declaration, "self") };
  return { did: did as Did, status: "ok", declaration, keyPackages };
}
