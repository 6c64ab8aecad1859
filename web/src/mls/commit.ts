// Building this device's commits as plain async functions over an immutable ts-mls state
// (docs/spec.md §11.2–§11.4, §11.8, §11.13, §11.16, §11.17). Each returns a PendingCommit:
// the message to send, and the state to adopt only once the DS accepted it (§11.8).
import {
  type ClientState,
  type Extension,
  type KeyPackage,
  type Proposal,
  createCommit,
  encodeMlsMessage,
} from "ts-mls";
import { type DeviceIdentity } from "./binding.js";
import { tagAad } from "./epochTag.js";
import { NotAllowed, NothingToDo } from "./errors.js";
import { type GroupData, encodeGroupData, groupDataExtension } from "./groupData.js";
import { type SignatureKeyPair, leafExtensions } from "./keyPackage.js";
import { type LeafProof, leafProofsProposal } from "./leafProofs.js";
import { checkPolicy } from "./policy.js";
import { encodedRatchetTree, epochAuthenticator, groupDataOf, mailboxKeySeed, members, ownLeafIndex } from "./state.js";
import { cipherSuite } from "./suite.js";
import { GROUP_DATA_EXTENSION } from "./constants.js";

/** A commit built on the state's epoch, not yet accepted by the DS. */
export interface PendingCommit {
  /** The epoch it is built on: the envelope's `epoch` (§11.3). */
  readonly epoch: bigint;
  /** The MLSMessage (a PrivateMessage) to send, before bucket padding. */
  readonly message: Uint8Array;
  /** The state to adopt once the DS accepted the commit (dropped on EpochConflict). */
  readonly newState: ClientState;
  /** The seed of `nextKey` (§11.3): the mailbox-key exporter of the new epoch. */
  readonly nextMailboxSeed: Uint8Array;
  /** For commits that add devices: what the invitees need (§11.4). */
  readonly welcome?: WelcomeOut;
}

/** The Welcome of a commit that adds devices. */
export interface WelcomeOut {
  /** The MLSMessage (welcome). */
  readonly message: Uint8Array;
  /** Whether the Welcome carries the ratchet tree in its `ratchet_tree` extension. */
  readonly ratchetTreeInline: boolean;
  /** The new epoch's TLS-encoded ratchet tree, to send out of band when not inline (§11.4). */
  readonly ratchetTree: Uint8Array;
}

/** Options of a commit. */
interface CommitOptions {
  readonly proposals?: Proposal[];
  readonly ratchetTreeInline?: boolean;
  readonly updatePathLeaf?: { signatureKeyPair?: SignatureKeyPair; extensions?: Extension[] };
  /** Skip the policy check (only the creator's first mailbox commit, which no member receives). */
  readonly unchecked?: boolean;
}

async function commit(state: ClientState, options: CommitOptions): Promise<PendingCommit> {
  const cs = await cipherSuite();
  const built = await createCommit(
    { state, cipherSuite: cs },
    {
      extraProposals: options.proposals ?? [],
      ratchetTreeExtension: options.ratchetTreeInline ?? true,
      authenticatedData: await tagAad(epochAuthenticator(state)),
      ...(options.updatePathLeaf === undefined ? {} : { updatePathLeaf: options.updatePathLeaf }),
    },
  );
  if (options.unchecked !== true) {
    const proposals = (options.proposals ?? []).map((proposal) => ({ proposal, senderLeafIndex: ownLeafIndex(state) }));
    const violation = checkPolicy(state, ownLeafIndex(state), proposals, built.newState);
    if (violation !== undefined) throw new NotAllowed(violation);
  }
  return {
    epoch: state.groupContext.epoch,
    message: encodeMlsMessage(built.commit),
    newState: built.newState,
    nextMailboxSeed: await mailboxKeySeed(built.newState),
    ...(built.welcome === undefined
      ? {}
      : {
          welcome: {
            message: encodeMlsMessage({ version: "mls10", wireformat: "mls_welcome", welcome: built.welcome }),
            ratchetTreeInline: options.ratchetTreeInline ?? true,
            ratchetTree: encodedRatchetTree(built.newState),
          },
        }),
  };
}

/** GroupContext extensions with the group data replaced by `data` (the others kept, in order). */
function withGroupData(state: ClientState, data: GroupData): Extension[] {
  return state.groupContext.extensions.map((e) => (e.extensionType === GROUP_DATA_EXTENSION ? groupDataExtension(data) : e));
}

/**
 * The creator's first commit (§11.3): a GroupContextExtensions proposal setting the group
 * data's `mailbox` to the mailbox created with the epoch-0 key, sent as epoch 0.
 */
export async function setMailbox(state: ClientState, mailbox: Uint8Array): Promise<PendingCommit> {
  const data = { ...groupDataOf(state), mailbox };
  encodeGroupData(data); // throws GroupDataError when the mailbox is not 32 bytes
  return commit(state, {
    proposals: [{ proposalType: "group_context_extensions", groupContextExtensions: { extensions: withGroupData(state, data) } }],
    unchecked: true,
  });
}

/** Changes the group data (name, description, admins, lifetime): admins only (§11.2). */
export async function updateGroupData(state: ClientState, change: (data: GroupData) => GroupData): Promise<PendingCommit> {
  const data = change(groupDataOf(state));
  return commit(state, {
    proposals: [{ proposalType: "group_context_extensions", groupContextExtensions: { extensions: withGroupData(state, data) } }],
  });
}

/** One device to add: its verified KeyPackage and the proof the committer verified (§11.13). */
export interface Invitee {
  readonly keyPackage: KeyPackage;
  readonly keyPackageRef: Uint8Array;
  /** The record key of its `chat.mls.keyPackage` record and the getRecord CAR. */
  readonly rkey: string;
  readonly proof: Uint8Array;
}

/**
 * Adds devices in one commit with their leaf proofs (one 0xF0A8 proposal, by value).
 * `ratchetTreeInline: false` builds the Welcome without the tree (§11.4): the tree is then
 * sent out of band from `welcome.ratchetTree`.
 */
export async function addMembers(state: ClientState, invitees: readonly Invitee[], options: { ratchetTreeInline: boolean }): Promise<PendingCommit> {
  if (invitees.length === 0) throw new NothingToDo("no device to add");
  const proofs: LeafProof[] = invitees.map((i) => ({ keyPackageRef: i.keyPackageRef, rkey: i.rkey, proof: i.proof }));
  return commit(state, {
    proposals: [...invitees.map((i): Proposal => ({ proposalType: "add", add: { keyPackage: i.keyPackage } })), leafProofsProposal(proofs)],
    ratchetTreeInline: options.ratchetTreeInline,
  });
}

/** Removes these leaves in one commit (admins remove anyone; anyone removes its own account's devices). */
export async function removeLeaves(state: ClientState, leafIndices: readonly number[]): Promise<PendingCommit> {
  if (leafIndices.length === 0) throw new NothingToDo("no leaf to remove");
  return commit(state, { proposals: leafIndices.map((removed): Proposal => ({ proposalType: "remove", remove: { removed } })) });
}

/** Removes every device of these accounts (this device excepted). */
export async function removeAccounts(state: ClientState, dids: readonly string[]): Promise<PendingCommit> {
  const own = ownLeafIndex(state);
  const leaves = members(state)
    .filter((m) => m.did !== undefined && dids.includes(m.did) && m.leafIndex !== own)
    .map((m) => m.leafIndex);
  if (leaves.length === 0) throw new NothingToDo("no device of these accounts is in the group");
  return removeLeaves(state, leaves);
}

/** A self-update: an empty commit with a path (new encryption keys for this leaf). */
export async function selfUpdate(state: ClientState): Promise<PendingCommit> {
  return commit(state, {});
}

/**
 * A self-update that rotates this leaf's signature key (§11.1, §11.16.6): the UpdatePath
 * leaf carries `newKey` and a device binding for it and is signed by it; the commit is
 * signed by the current key. The returned state signs with `newKey`.
 */
export async function rotateSignatureKey(state: ClientState, device: DeviceIdentity, newKey: SignatureKeyPair): Promise<PendingCommit> {
  return commit(state, { updatePathLeaf: { signatureKeyPair: newKey, extensions: leafExtensions(device, newKey.publicKey) } });
}
