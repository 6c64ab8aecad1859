// The key material of one MLS step (docs/spec.md §11.13, §11.16.4): each DID's #atproto key
// resolved now, and the record-proof check of §3.3 steps 1–7 with it.
import type { KeyMaterial, RecordVerdict, ResolvedKey } from "../mls/material.js";
import { type AtprotoKey, DidResolutionError, type ResolverConfig, resolveDid } from "../net/did.js";
import * as J from "../net/json.js";
import { RecordProofError } from "../net/proof/errors.js";
import { verifyRecordProof } from "../net/proof/verify.js";

/** DID documents fetched at once. */
const RESOLVE_CONCURRENCY = 8;

/**
 * Resolves `dids` (a permanent failure is a refusal of that DID; a transient one throws, and
 * the step is retried at the next sync) and returns material holding them and `base`'s keys.
 */
export async function resolveMaterial(
  dids: readonly string[],
  resolver: ResolverConfig,
  base?: KeyMaterial<AtprotoKey>,
): Promise<KeyMaterial<AtprotoKey>> {
  const keys = new Map<string, ResolvedKey<AtprotoKey>>(base?.keys ?? []);
  const todo = [...new Set(dids)].filter((d) => !keys.has(d));
  // A few documents at a time: a join checks every member's binding (§11.16.5).
  const resolveOne = async (did: string): Promise<void> => {
    try {
      const doc = await resolveDid(J.did(did, "did"), resolver);
      keys.set(did, doc.atprotoKey === undefined ? { kind: "refused", reason: "no #atproto key" } : { kind: "key", key: doc.atprotoKey });
    } catch (e) {
      if ((e instanceof DidResolutionError && e.kind === "permanent") || e instanceof J.ShapeError) keys.set(did, { kind: "refused", reason: e.message });
      else throw e;
    }
  };
  for (let i = 0; i < todo.length; i += RESOLVE_CONCURRENCY) await Promise.all(todo.slice(i, i + RESOLVE_CONCURRENCY).map(resolveOne));
  return {
    keys,
    async verifyRecord({ did, collection, rkey, proof, key }): Promise<RecordVerdict> {
      try {
        const r = await verifyRecordProof({ proof, did, collection, rkey, key });
        return r.found ? { kind: "present", record: r.record } : { kind: "refused", reason: "Absent" };
      } catch (e) {
        if (e instanceof RecordProofError) return { kind: "refused", reason: e.reason };
        throw e;
      }
    },
  };
}

/** Runs a step that may answer `needsKeys`, resolving what it asks for (bounded rounds). */
export async function withMaterial<T extends { kind: string }>(
  resolver: ResolverConfig,
  step: (m: KeyMaterial<AtprotoKey>) => Promise<T | { kind: "needsKeys"; dids: readonly string[] }>,
): Promise<T> {
  let material = await resolveMaterial([], resolver);
  for (let round = 0; round < 8; round++) {
    const out = await step(material);
    if (out.kind !== "needsKeys") return out as T;
    material = await resolveMaterial((out as { dids: readonly string[] }).dids, resolver, material);
  }
  throw new Error("key material: too many rounds");
}
