// Read-only views of a ts-mls group state as atmls sees it: group data, members, the epoch
// authenticator, the mailbox-key exporter input (docs/spec.md §11.2, §11.3).
import { type ClientState, type LeafNode, mlsExporter } from "ts-mls";
import { encodeRatchetTree } from "ts-mls/ratchetTree.js";
import { GROUP_DATA_EXTENSION, MAILBOX_EXPORTER_LABEL } from "./constants.js";
import { type GroupData, decodeGroupData } from "./groupData.js";
import { cipherSuite } from "./suite.js";
import { leafDeviceId, leafDid } from "./verify.js";

/** One member device. */
export interface Member {
  readonly leafIndex: number;
  /** The account (credential identity); undefined for a credential that is not a DID. */
  readonly did: string | undefined;
  /** The device id of the leaf's `application_id`. */
  readonly deviceId: string | undefined;
  readonly signatureKey: Uint8Array;
}

/** The leaf at `leafIndex`, if not blank. */
export function leafAt(state: ClientState, leafIndex: number): LeafNode | undefined {
  const node = state.ratchetTree[leafIndex * 2];
  return node?.nodeType === "leaf" ? node.leaf : undefined;
}

/** Every member device, by leaf index. */
export function members(state: ClientState): Member[] {
  const out: Member[] = [];
  for (let i = 0; i * 2 < state.ratchetTree.length; i++) {
    const leaf = leafAt(state, i);
    if (leaf === undefined) continue;
    out.push({ leafIndex: i, did: leafDid(leaf), deviceId: leafDeviceId(leaf), signatureKey: leaf.signaturePublicKey });
  }
  return out;
}

/** This device's leaf index. */
export function ownLeafIndex(state: ClientState): number {
  return state.privatePath.leafIndex;
}

/** The group data of the state's GroupContext (throws DecodeError when absent or invalid). */
export function groupDataOf(state: ClientState): GroupData {
  const ext = state.groupContext.extensions.find((e) => e.extensionType === GROUP_DATA_EXTENSION);
  if (ext === undefined) throw new RangeError("no group data extension");
  return decodeGroupData(ext.extensionData);
}

/** The MLS epoch. */
export function epochOf(state: ClientState): bigint {
  return state.groupContext.epoch;
}

/** RFC 9420 §8.7's epoch authenticator (equal at every member of the epoch). */
export function epochAuthenticator(state: ClientState): Uint8Array {
  return state.keySchedule.epochAuthenticator;
}

/**
 * The mailbox key's seed of the state's epoch (§11.3):
 * `MLS-Exporter("chat.mls mailbox", mailbox_e, 32)`, with `mailbox_e` the group data's
 * 32 raw mailbox bytes (zero in epoch 0). The Ed25519 key pair is derived from it by §11.3.
 */
export async function mailboxKeySeed(state: ClientState): Promise<Uint8Array> {
  return mlsExporter(state.keySchedule.exporterSecret, MAILBOX_EXPORTER_LABEL, groupDataOf(state).mailbox, 32, await cipherSuite());
}

/** The TLS-encoded `ratchet_tree` of the state's epoch (RFC 9420 §12.4.3.3), for out-of-band trees (§11.4). */
export function encodedRatchetTree(state: ClientState): Uint8Array {
  return encodeRatchetTree(state.ratchetTree);
}
