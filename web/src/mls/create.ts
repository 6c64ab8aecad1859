// Creating a group (docs/spec.md §11.2, §11.3): epoch 0 with atmls's required
// capabilities and the group data (mailbox all zero), the creator its only admin.
import { type ClientState, createGroup as mlsCreateGroup, encodeRequiredCapabilities } from "ts-mls";
import type { DeviceIdentity } from "./binding.js";
import { DEVICE_BINDING_EXTENSION, GROUP_DATA_EXTENSION, LEAF_PROOFS_PROPOSAL } from "./constants.js";
import { type Did, parseDid } from "./did.js";
import { groupDataExtension } from "./groupData.js";
import { type SignatureKeyPair, buildKeyPackage } from "./keyPackage.js";
import { mailboxKeySeed } from "./state.js";
import { cipherSuite, clientConfig } from "./suite.js";

/** What a new group is made of. */
export interface NewGroup {
  readonly device: DeviceIdentity;
  /** This device's leaf signature key in the group. */
  readonly signatureKey: SignatureKeyPair;
  /** The DID of the delivery service that will hold the group mailbox. */
  readonly ds: string;
  readonly name: string;
  /** Creation instant, Unix milliseconds. */
  readonly now: number;
}

/** A group at epoch 0 and the seed of its epoch-0 mailbox key (§11.3: `createMailbox` with it). */
export interface CreatedGroup {
  readonly state: ClientState;
  readonly mailboxSeed: Uint8Array;
}

/** Input that cannot make a group (a DS or creator that is not a DID). */
export class InvalidGroup extends Error {
  override readonly name = "InvalidGroup";
}

/**
 * Creates the MLS group at epoch 0: a random 32-byte group id; GroupContext extensions
 * `required_capabilities {extensions: [0xF0A7, 0xF0A9], proposals: [0xF0A8], credentials:
 * [basic]}` then the group data (ds, zero mailbox, name, no description, the creator as
 * only admin, padding buckets v1, no message lifetime); the creator's leaf bound (§11.16).
 * The next steps are `createMailbox` with `mailboxSeed`'s key and `setMailbox`.
 */
export async function createGroup(p: NewGroup): Promise<CreatedGroup> {
  const ds = parseDid(p.ds);
  const creator = parseDid(p.device.did);
  if (ds === undefined || creator === undefined) throw new InvalidGroup("ds and creator must be DIDs");
  const cs = await cipherSuite();
  const leaf = await buildKeyPackage({ device: p.device, signatureKey: p.signatureKey, lastResort: false, now: p.now });
  const required = encodeRequiredCapabilities({
    extensionTypes: [GROUP_DATA_EXTENSION, DEVICE_BINDING_EXTENSION],
    proposalTypes: [LEAF_PROOFS_PROPOSAL],
    credentialTypes: ["basic"],
  });
  const data = {
    ds,
    mailbox: new Uint8Array(32),
    name: p.name,
    description: "",
    admins: [creator as Did],
    padding: 1 as const,
    lifetimeSeconds: 0,
  };
  const groupId = crypto.getRandomValues(new Uint8Array(32));
  const state = await mlsCreateGroup(
    groupId,
    leaf.publicPackage,
    leaf.privatePackage,
    [{ extensionType: "required_capabilities", extensionData: required }, groupDataExtension(data)],
    cs,
    clientConfig,
  );
  return { state, mailboxSeed: await mailboxKeySeed(state) };
}
