// The epoch tag (docs/spec.md §11.17, fork detection): every application message, proposal
// and commit a device sends carries `0x01 || epoch_tag` as its MLS authenticated_data, with
// epoch_tag = SHA-256("chat.mls epoch tag v1" || epoch_authenticator)[0..16].
import { concat, utf8 } from "./bytes.js";
import { sha256 } from "./data-model.js";

/** The label hashed before the epoch authenticator. */
export const EPOCH_TAG_LABEL = "chat.mls epoch tag v1";
/** The first byte of authenticated data that carries an epoch tag. */
export const EPOCH_TAG_VERSION = 0x01;
const TAG_BYTES = 16;

/** The 16-byte epoch tag of an epoch authenticator (RFC 9420 §8.7). */
export async function epochTag(epochAuthenticator: Uint8Array): Promise<Uint8Array> {
  return (await sha256(concat(utf8(EPOCH_TAG_LABEL), epochAuthenticator))).slice(0, TAG_BYTES);
}

/** The authenticated_data a sender puts on its messages: 0x01 || epoch tag. */
export async function epochTagData(epochAuthenticator: Uint8Array): Promise<Uint8Array> {
  return concat(Uint8Array.of(EPOCH_TAG_VERSION), await epochTag(epochAuthenticator));
}

/** The epoch tag a message's authenticated_data carries, or null (anything else carries none). */
export function epochTagOf(authenticatedData: Uint8Array): Uint8Array | null {
  return authenticatedData.length === 1 + TAG_BYTES && authenticatedData[0] === EPOCH_TAG_VERSION
    ? authenticatedData.slice(1)
    : null;
}
