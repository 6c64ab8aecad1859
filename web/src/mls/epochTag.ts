// The epoch tag in `authenticated_data` (docs/spec.md §11.17): every message, proposal and
// commit a member sends carries `0x01 || SHA-256("chat.mls epoch tag v1" || epoch_authenticator)[0..16]`.
import { bytesEqual, utf8Bytes } from "./tls.js";

const LABEL = utf8Bytes("chat.mls epoch tag v1");
/** Length of an epoch tag. */
export const EPOCH_TAG_LEN = 16;

/** The epoch tag of an epoch authenticator. */
export async function epochTag(authenticator: Uint8Array): Promise<Uint8Array> {
  const input = new Uint8Array(LABEL.length + authenticator.length);
  input.set(LABEL, 0);
  input.set(authenticator, LABEL.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", input));
  return digest.slice(0, EPOCH_TAG_LEN);
}

/** The `authenticated_data` of a message sent in the epoch of `authenticator`. */
export async function tagAad(authenticator: Uint8Array): Promise<Uint8Array> {
  const out = new Uint8Array(1 + EPOCH_TAG_LEN);
  out[0] = 0x01;
  out.set(await epochTag(authenticator), 1);
  return out;
}

/** The tag an `authenticated_data` carries: `0x01` and 16 bytes; anything else carries none. */
export function aadTag(aad: Uint8Array): Uint8Array | undefined {
  return aad.length === 1 + EPOCH_TAG_LEN && aad[0] === 0x01 ? aad.slice(1) : undefined;
}

/** Whether `aad` carries a tag that differs from the tag of `authenticator` (a fork, §11.17). */
export async function tagDiffers(aad: Uint8Array, authenticator: Uint8Array): Promise<boolean> {
  const tag = aadTag(aad);
  return tag !== undefined && !bytesEqual(tag, await epochTag(authenticator));
}
