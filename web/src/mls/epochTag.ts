// The epoch tag in `authenticated_data` (docs/spec.md §11.17), as the MLS layer uses it; the
// computation itself is proto/epoch-tag.ts (one implementation).
import { epochTag, epochTagData, epochTagOf } from "../proto/epoch-tag.js";
import { bytesEqual } from "./tls.js";

export { epochTag };

/** Length of an epoch tag. */
export const EPOCH_TAG_LEN = 16;

/** The `authenticated_data` of a message sent in the epoch of `authenticator`. */
export const tagAad = epochTagData;

/** The tag an `authenticated_data` carries: `0x01` and 16 bytes; anything else carries none. */
export function aadTag(aad: Uint8Array): Uint8Array | undefined {
  return epochTagOf(aad) ?? undefined;
}

/** Whether `aad` carries a tag that differs from the tag of `authenticator` (a fork, §11.17). */
export async function tagDiffers(aad: Uint8Array, authenticator: Uint8Array): Promise<boolean> {
  const tag = aadTag(aad);
  return tag !== undefined && !bytesEqual(tag, await epochTag(authenticator));
}
