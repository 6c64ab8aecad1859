// Joining from a Welcome (docs/spec.md §11.4, §11.16.5): with the tree inline or out of
// band, then every other leaf's device binding checked with the current DID documents,
// before anything is kept. A pure function of (welcome, tree, the device's KeyPackage,
// material): the joined state, or a verdict (and nothing of the join stays).
import { type ClientState, type KeyPackage, type PrivateKeyPackage, emptyPskIndex, joinGroup } from "ts-mls";
import { decodeRatchetTree } from "ts-mls/ratchetTree.js";
import { type KeyMaterial, MissingKey, type NeedsKeys } from "./material.js";
import { groupDataOf, members, ownLeafIndex, leafAt } from "./state.js";
import { cipherSuite, clientConfig } from "./suite.js";
import { checkLeafBinding } from "./verify.js";
import { parsePayload } from "./wire.js";

/** What a Welcome comes to. */
export type Joined =
  | { readonly kind: "joined"; readonly state: ClientState }
  /** The welcome is refused (`Event::WelcomeRefused`): not this device's, invalid, or a member's binding fails. */
  | { readonly kind: "refused"; readonly reason: string }
  | NeedsKeys;

/** Parses a TLS-encoded ratchet tree (the out-of-band tree of §11.4); undefined if it does not parse exactly. */
export function parseRatchetTree(bytes: Uint8Array): ClientState["ratchetTree"] | undefined {
  try {
    const decoded = decodeRatchetTree(bytes, 0);
    return decoded !== undefined && decoded[1] === bytes.length ? decoded[0] : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Joins from `welcome` (an MLSMessage, padding allowed) with this device's KeyPackage and
 * its private keys; `ratchetTree` is the out-of-band tree when the Welcome has none.
 * `material` holds the current #atproto keys of the members' DIDs.
 */
export async function joinFromWelcome<K>(
  welcome: Uint8Array,
  ratchetTree: Uint8Array | undefined,
  keyPackage: { publicPackage: KeyPackage; privatePackage: PrivateKeyPackage },
  material: KeyMaterial<K>,
): Promise<Joined> {
  let state: ClientState;
  try {
    const message = parsePayload(welcome);
    if (message.wireformat !== "mls_welcome") return { kind: "refused", reason: `a ${message.wireformat}, not a welcome` };
    let tree;
    if (ratchetTree !== undefined) {
      tree = parseRatchetTree(ratchetTree);
      if (tree === undefined) return { kind: "refused", reason: "the ratchet tree does not parse" };
    }
    state = await joinGroup(message.welcome, keyPackage.publicPackage, keyPackage.privatePackage, emptyPskIndex, await cipherSuite(), tree, undefined, clientConfig);
    groupDataOf(state);
  } catch (e) {
    return { kind: "refused", reason: e instanceof Error ? `${e.name}: ${e.message}` : "invalid" };
  }
  const own = ownLeafIndex(state);
  const others = members(state).filter((m) => m.leafIndex !== own);
  if (others.some((m) => m.did === undefined)) return { kind: "refused", reason: "a member's credential is not a DID" };
  const missing = [...new Set(others.map((m) => m.did as string))].filter((d) => !material.keys.has(d));
  if (missing.length > 0) return { kind: "needsKeys", dids: missing.sort() };
  try {
    for (const m of others) {
      const leaf = leafAt(state, m.leafIndex);
      if (leaf === undefined || m.did === undefined) continue;
      const refusal = await checkLeafBinding(leaf, m.did, material);
      if (refusal !== undefined) return { kind: "refused", reason: `device binding of leaf ${m.leafIndex}: ${refusal.kind}` };
    }
  } catch (e) {
    if (e instanceof MissingKey) return { kind: "needsKeys", dids: [e.did] };
    throw e;
  }
  return { kind: "joined", state };
}
