// What a step (one commit, one welcome) needs from outside the group state: the #atproto
// keys of the DIDs it names, resolved by the caller (docs/spec.md §11.13, §11.16.5), and
// the record-proof check of §3.3 steps 1–7. Nothing here does I/O: a step that names a DID
// the material lacks answers with the DIDs it needs, and the caller resolves them and
// decides the same step again from the same (immutable) state.

/** The verdict of §3.3 steps 1–7 on a getRecord CAR. */
export type RecordVerdict =
  /** The record is present; its value as decoded DAG-CBOR (bytes as Uint8Array). */
  | { readonly kind: "present"; readonly record: unknown }
  /** The proof fails (or proves absence): the reason names the step. */
  | { readonly kind: "refused"; readonly reason: string };

/** One DID's key as resolved for this step: usable, or a definite refusal (not found, tombstoned, invalid). */
export type ResolvedKey<K> = { readonly kind: "key"; readonly key: K } | { readonly kind: "refused"; readonly reason: string };

/** The verified key material of one step. `K` is the caller's key type (opaque here). */
export interface KeyMaterial<K> {
  /**
   * Each DID's #atproto key: for the leaves a commit brings, the one in force at the
   * commit's `acceptedAt` (§11.13 "the document in force at acceptedAt"); for a joiner's
   * check of the tree, the current one (§11.16.4 step 3).
   */
  readonly keys: ReadonlyMap<string, ResolvedKey<K>>;
  /** §3.3 steps 1–7 for `collection/rkey` in `did`'s repo with `key` (pure: no I/O). */
  verifyRecord(query: { did: string; collection: string; rkey: string; proof: Uint8Array; key: K }): Promise<RecordVerdict>;
}

/** A step that cannot be decided before these DIDs are resolved (and is decided again then). */
export interface NeedsKeys {
  readonly kind: "needsKeys";
  readonly dids: readonly string[];
}

/** Thrown inside a check when a DID is not in the material; turned into NeedsKeys. */
export class MissingKey extends Error {
  override readonly name = "MissingKey";
  constructor(readonly did: string) {
    super("a DID of this step is not resolved");
  }
}
