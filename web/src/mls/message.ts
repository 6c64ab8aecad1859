// Application messages and leave proposals of this device (docs/spec.md §11.2, §11.6,
// §11.17): PrivateMessages carrying the epoch tag in `authenticated_data`.
import { type ClientState, createApplicationMessage, createProposal, encodeMlsMessage } from "ts-mls";
import { tagAad } from "./epochTag.js";
import { epochAuthenticator, ownLeafIndex } from "./state.js";
import { cipherSuite } from "./suite.js";

/** A message built: the MLSMessage to send and the state to keep (its sender ratchet advanced). */
export interface Sent {
  readonly epoch: bigint;
  readonly message: Uint8Array;
  readonly newState: ClientState;
}

/** Encrypts `plaintext` (a content object, §11.6) as a PrivateMessage of the current epoch. */
export async function sendMessage(state: ClientState, plaintext: Uint8Array): Promise<Sent> {
  const cs = await cipherSuite();
  const sent = await createApplicationMessage(state, plaintext, cs, await tagAad(epochAuthenticator(state)));
  return {
    epoch: state.groupContext.epoch,
    message: encodeMlsMessage({ version: "mls10", wireformat: "mls_private_message", privateMessage: sent.privateMessage }),
    newState: sent.newState,
  };
}

/** This device's leave: a Remove proposal of its own leaf, committed by an admin (§11.2). */
export async function proposeLeave(state: ClientState): Promise<Sent> {
  const cs = await cipherSuite();
  const sent = await createProposal(
    state,
    false,
    { proposalType: "remove", remove: { removed: ownLeafIndex(state) } },
    cs,
    await tagAad(epochAuthenticator(state)),
  );
  return { epoch: state.groupContext.epoch, message: encodeMlsMessage(sent.message), newState: sent.newState };
}
