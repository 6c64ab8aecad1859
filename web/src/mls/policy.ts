// The group policy a commit must meet before it is merged (docs/spec.md §11.2, §11.13
// "only member commits, only known proposals"): who may add, remove and change what.
// A pure function of the old state, the commit's proposals and committer, and the new state.
import type { ClientState, ProposalWithSender } from "ts-mls";
import { LEAF_PROOFS_PROPOSAL } from "./constants.js";
import { bytesEqual } from "./tls.js";
import { type GroupData, encodeGroupData, isAdmin } from "./groupData.js";
import { groupDataOf, leafAt } from "./state.js";
import { leafDid } from "./verify.js";

/** Why a commit is refused (the reference client's `PolicyViolation`). */
export type PolicyViolation =
  | { readonly kind: "NotFromMember" }
  | { readonly kind: "PublicMessage" }
  | { readonly kind: "NotAdmin"; readonly did: string }
  | { readonly kind: "UnsupportedProposal"; readonly proposal: string }
  | { readonly kind: "IdentityChange"; readonly from: string; readonly to: string }
  | { readonly kind: "BadCredential" }
  | { readonly kind: "MailboxChange" }
  | { readonly kind: "GroupData"; readonly reason: string }
  | { readonly kind: "LeafProofs"; readonly reason: string }
  | { readonly kind: "LeafProofMissing"; readonly did: string }
  | { readonly kind: "LeafProofRefused"; readonly did: string; readonly reason: string }
  | { readonly kind: "DeviceBinding"; readonly did: string; readonly reason: string }
  /** ts-mls refused the message (signature, confirmation tag, tree, lifetime, …). */
  | { readonly kind: "Invalid"; readonly reason: string };

function proposalName(p: ProposalWithSender["proposal"]): string {
  return typeof p.proposalType === "number" ? `0x${p.proposalType.toString(16)}` : p.proposalType;
}

function groupData(state: ClientState): GroupData | PolicyViolation {
  try {
    return groupDataOf(state);
  } catch (e) {
    return { kind: "GroupData", reason: e instanceof Error ? e.message : "invalid" };
  }
}

/**
 * §11.2's policy for a commit by the member at `committer` holding `proposals`, which
 * takes `old` to `next`: undefined when it holds.
 */
export function checkPolicy(
  old: ClientState,
  committer: number | undefined,
  proposals: readonly ProposalWithSender[],
  next: ClientState,
): PolicyViolation | undefined {
  if (committer === undefined) return { kind: "NotFromMember" };
  const committerLeaf = leafAt(old, committer);
  const committerDid = committerLeaf === undefined ? undefined : leafDid(committerLeaf);
  if (committerDid === undefined) return { kind: "BadCredential" };
  const data = groupData(old);
  if ("kind" in data) return data;
  const admin = isAdmin(data, committerDid);
  const notAdmin: PolicyViolation = { kind: "NotAdmin", did: committerDid };
  for (const { proposal } of proposals) {
    switch (proposal.proposalType) {
      case "add":
      case "remove":
      case "update":
        break;
      case "group_context_extensions":
        if (!admin) return notAdmin;
        break;
      default:
        if (proposal.proposalType !== LEAF_PROOFS_PROPOSAL) return { kind: "UnsupportedProposal", proposal: proposalName(proposal) };
    }
  }
  for (const { proposal } of proposals) {
    if (proposal.proposalType !== "add") continue;
    const did = leafDid(proposal.add.keyPackage.leafNode);
    if (did === undefined) return { kind: "BadCredential" };
    if (did !== committerDid && !admin) return notAdmin;
  }
  for (const { proposal, senderLeafIndex } of proposals) {
    if (proposal.proposalType !== "remove") continue;
    const removed = proposal.remove.removed;
    const removedLeaf = leafAt(old, removed);
    const removedDid = removedLeaf === undefined ? undefined : leafDid(removedLeaf);
    const selfLeave = senderLeafIndex === removed;
    if (!(admin || selfLeave || removedDid === committerDid)) return notAdmin;
  }
  for (const { proposal, senderLeafIndex } of proposals) {
    if (proposal.proposalType !== "update" || senderLeafIndex === undefined) continue;
    const before = leafAt(old, senderLeafIndex);
    const from = before === undefined ? undefined : leafDid(before);
    const to = leafDid(proposal.update.leafNode);
    if (to === undefined) return { kind: "BadCredential" };
    if (from !== undefined && from !== to) return { kind: "IdentityChange", from, to };
  }
  // The committer's UpdatePath leaf (a path always renews the leaf's encryption key).
  const after = leafAt(next, committer);
  if (after !== undefined && !bytesEqual(after.hpkePublicKey, committerLeaf?.hpkePublicKey ?? new Uint8Array())) {
    const to = leafDid(after);
    if (to === undefined) return { kind: "BadCredential" };
    if (to !== committerDid) return { kind: "IdentityChange", from: committerDid, to };
  }
  const nextData = groupData(next);
  if ("kind" in nextData) return nextData;
  if (!bytesEqual(encodeGroupData(nextData), encodeGroupData(data))) {
    if (!admin) return notAdmin;
    if (!bytesEqual(nextData.mailbox, data.mailbox) || nextData.ds !== data.ds) return { kind: "MailboxChange" };
  }
  return undefined;
}
