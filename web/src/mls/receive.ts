// Processing one group payload (docs/spec.md §11.2, §11.8, §11.13, §11.16.5, §11.17) as a
// pure function of (old state, payload, the envelope's acceptedAt, the verified key
// material): a new state to adopt, or a typed verdict with the old state unchanged.
//
// ts-mls's commit callback is synchronous while the checks need the material, so the
// commit is processed with a callback that only captures the proposals, the checks run
// on what was captured and on the new state, and `newState` is adopted or dropped.
import {
  type ClientState,
  type KeyPackage,
  type LeafNode,
  type ProposalWithSender,
  emptyPskIndex,
  encodeMlsMessage,
  processPrivateMessage,
} from "ts-mls";
import { makeKeyPackageRef } from "ts-mls/keyPackage.js";
import { LEAF_PROOFS_PROPOSAL } from "./constants.js";
import { tagDiffers } from "./epochTag.js";
import { decodeLeafProofs, type LeafProof } from "./leafProofs.js";
import { type KeyMaterial, MissingKey, type NeedsKeys } from "./material.js";
import { type PolicyViolation, checkPolicy } from "./policy.js";
import { epochAuthenticator, leafAt } from "./state.js";
import { cipherSuite } from "./suite.js";
import { bytesEqual, toHex } from "./tls.js";
import { checkLeafBinding, checkLeafProof, leafBindingBytes, leafDid } from "./verify.js";
import { NotAnMlsMessage, parsePayload } from "./wire.js";

/** What one payload comes to. Every kind but the first three leaves the state as it was. */
export type Received =
  /** An application message of a member (its content object, §11.6). */
  | { readonly kind: "application"; readonly plaintext: Uint8Array; readonly sender: number | undefined; readonly newState: ClientState }
  /** A commit that passed every check: adopt `newState` (`removed`: this device was removed). */
  | { readonly kind: "commit"; readonly newState: ClientState; readonly committer: number; readonly removed: boolean }
  /** A member's own leave proposal, kept for an admin's commit. */
  | { readonly kind: "proposal"; readonly newState: ClientState }
  /** A commit or proposal that fails a check: not merged (`Event::CommitRefused`). */
  | { readonly kind: "refused"; readonly violation: PolicyViolation }
  /** A message of this epoch that does not decrypt and carries another epoch tag (§11.17). */
  | { readonly kind: "forked" }
  /** A message of a later epoch: this device missed a commit (§11.17 `Behind`). */
  | { readonly kind: "behind" }
  /** A commit or proposal of a past epoch, or a past message that cannot be read: ignored. */
  | { readonly kind: "stale" }
  | NeedsKeys;

function reason(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : "failed";
}

/**
 * Processes one payload received in the group mailbox; `acceptedAt` is its envelope's
 * `receivedAt` (Unix ms). A device's own envelopes come back to it: the caller recognises
 * them by payload digest (§11.8) and does not pass them here (ts-mls cannot process its
 * own commit; it adopts the PendingCommit's state instead).
 */
export async function receive<K>(state: ClientState, payload: Uint8Array, acceptedAt: number, material: KeyMaterial<K>): Promise<Received> {
  let message;
  try {
    message = parsePayload(payload);
  } catch (e) {
    return { kind: "refused", violation: { kind: "Invalid", reason: e instanceof NotAnMlsMessage ? e.message : "unparsable" } };
  }
  if (message.wireformat === "mls_public_message") return { kind: "refused", violation: { kind: "PublicMessage" } };
  if (message.wireformat !== "mls_private_message") return { kind: "refused", violation: { kind: "Invalid", reason: `a ${message.wireformat} in the group mailbox` } };
  const pm = message.privateMessage;
  const epoch = state.groupContext.epoch;
  if (pm.epoch > epoch) return { kind: "behind" };
  const cs = await cipherSuite();
  let captured: { committer: number | undefined; proposals: ProposalWithSender[] } | undefined;
  let leave = false;
  let result;
  try {
    result = await processPrivateMessage(state, pm, emptyPskIndex, cs, (incoming) => {
      if (incoming.kind === "commit") {
        captured = { committer: incoming.senderLeafIndex, proposals: incoming.proposals };
        return "accept";
      }
      const p = incoming.proposal;
      leave = p.proposal.proposalType === "remove" && p.senderLeafIndex === p.proposal.remove.removed;
      return leave ? "accept" : "reject";
    });
  } catch (e) {
    if (pm.epoch < epoch) return { kind: "stale" };
    if (await tagDiffers(pm.authenticatedData, epochAuthenticator(state))) return { kind: "forked" };
    return { kind: "refused", violation: { kind: "Invalid", reason: reason(e) } };
  }
  if (result.kind === "applicationMessage") {
    return { kind: "application", plaintext: result.message, sender: result.senderLeafIndex, newState: result.newState };
  }
  if (captured === undefined) {
    return leave
      ? { kind: "proposal", newState: result.newState }
      : { kind: "refused", violation: { kind: "UnsupportedProposal", proposal: "standalone proposal other than a member's own Remove" } };
  }
  const committer = captured.committer;
  if (committer === undefined) return { kind: "refused", violation: { kind: "NotFromMember" } };
  const verdict = await checkCommit(state, committer, captured.proposals, result.newState, acceptedAt, material);
  if (verdict !== undefined) return verdict;
  return {
    kind: "commit",
    newState: result.newState,
    committer,
    removed: result.newState.groupActiveState.kind === "removedFromGroup",
  };
}

/** An added KeyPackage with the forms receivers compare. */
interface Added {
  readonly keyPackage: KeyPackage;
  readonly message: Uint8Array;
  readonly keyPackageRef: Uint8Array;
  readonly did: string;
}

/** §11.2 policy, then §11.13 leaf proofs, then §11.16.5 bindings; undefined when all hold. */
async function checkCommit<K>(
  old: ClientState,
  committer: number,
  proposals: readonly ProposalWithSender[],
  next: ClientState,
  acceptedAt: number,
  material: KeyMaterial<K>,
): Promise<Received | undefined> {
  const policy = checkPolicy(old, committer, proposals, next);
  if (policy !== undefined) return { kind: "refused", violation: policy };
  const cs = await cipherSuite();
  const added: Added[] = [];
  for (const { proposal } of proposals) {
    if (proposal.proposalType !== "add") continue;
    const keyPackage = proposal.add.keyPackage;
    const did = leafDid(keyPackage.leafNode);
    if (did === undefined) return { kind: "refused", violation: { kind: "BadCredential" } };
    added.push({
      keyPackage,
      did,
      message: encodeMlsMessage({ version: "mls10", wireformat: "mls_key_package", keyPackage }),
      keyPackageRef: await makeKeyPackageRef(keyPackage, cs.hash),
    });
  }
  const proofs = leafProofsOf(proposals, added);
  if ("kind" in proofs) return { kind: "refused", violation: proofs };
  // The committer's UpdatePath leaf is checked when it changes the signature key or the binding.
  const before = leafAt(old, committer);
  const after = leafAt(next, committer);
  const rebound = before !== undefined && after !== undefined && bindingChanged(before, after) ? after : undefined;
  const needed = new Set(added.map((a) => a.did));
  const committerDid = rebound === undefined ? undefined : leafDid(rebound);
  if (committerDid !== undefined) needed.add(committerDid);
  const missing = [...needed].filter((d) => !material.keys.has(d));
  if (missing.length > 0) return { kind: "needsKeys", dids: missing.sort() };
  try {
    for (const a of added) {
      const proof = proofs.get(toHex(a.keyPackageRef));
      if (proof === undefined) return { kind: "refused", violation: { kind: "LeafProofMissing", did: a.did } };
      const refusal = await checkLeafProof(a, proof, a.did, acceptedAt, material);
      if (refusal !== undefined) {
        return { kind: "refused", violation: { kind: "LeafProofRefused", did: a.did, reason: refusalText(refusal) } };
      }
    }
    for (const a of added) {
      const refusal = await checkLeafBinding(a.keyPackage.leafNode, a.did, material);
      if (refusal !== undefined) return { kind: "refused", violation: { kind: "DeviceBinding", did: a.did, reason: refusalText(refusal) } };
    }
    if (rebound !== undefined && committerDid !== undefined) {
      const refusal = await checkLeafBinding(rebound, committerDid, material);
      if (refusal !== undefined) return { kind: "refused", violation: { kind: "DeviceBinding", did: committerDid, reason: refusalText(refusal) } };
    }
  } catch (e) {
    if (e instanceof MissingKey) return { kind: "needsKeys", dids: [e.did] };
    throw e;
  }
  return undefined;
}

function refusalText(r: { kind: string; reason?: string }): string {
  return r.reason === undefined ? r.kind : `${r.kind}: ${r.reason}`;
}

/** Whether the committer's leaf has a new signature key or new 0xF0A9 bytes. */
function bindingChanged(before: LeafNode, after: LeafNode): boolean {
  const a = leafBindingBytes(before);
  const b = leafBindingBytes(after);
  return (
    !bytesEqual(before.signaturePublicKey, after.signaturePublicKey) ||
    a === undefined ||
    b === undefined ||
    !bytesEqual(a, b)
  );
}

/**
 * §11.13 step 1: no 0xF0A8 without Adds, exactly one with Adds; each Add's ref in exactly
 * one proof, and no proof for a package the commit does not add. The proofs by ref (hex).
 */
function leafProofsOf(proposals: readonly ProposalWithSender[], added: readonly Added[]): Map<string, LeafProof> | PolicyViolation {
  const custom = proposals.filter(({ proposal }) => proposal.proposalType === LEAF_PROOFS_PROPOSAL);
  if (added.length === 0) {
    return custom.length === 0 ? new Map() : { kind: "LeafProofs", reason: "leaf proofs in a commit without Add" };
  }
  if (custom.length !== 1) return { kind: "LeafProofs", reason: `${custom.length} leaf-proofs proposals` };
  const proposal = custom[0]?.proposal;
  if (proposal === undefined || !("proposalData" in proposal)) return { kind: "LeafProofs", reason: "malformed" };
  let list: LeafProof[];
  try {
    list = decodeLeafProofs(proposal.proposalData);
  } catch (e) {
    return { kind: "LeafProofs", reason: reason(e) };
  }
  const wanted = new Set(added.map((a) => toHex(a.keyPackageRef)));
  const byRef = new Map<string, LeafProof>();
  for (const p of list) {
    const ref = toHex(p.keyPackageRef);
    if (!wanted.has(ref)) return { kind: "LeafProofs", reason: "a proof for a KeyPackage the commit does not add" };
    if (byRef.has(ref)) return { kind: "LeafProofs", reason: "two proofs for one KeyPackage" };
    byRef.set(ref, p);
  }
  return byRef;
}
