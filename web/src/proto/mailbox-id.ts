// Mailbox ids (docs/spec.md §2, §9.1): 32 bytes chosen by the DS, written as exactly 52
// characters of lowercase base32 without padding, the last character's 4 spare bits zero.
import { EncodingError, fromBase32, toBase32 } from "./bytes.js";

/** A mailbox id in its one text form; construct with `parseMailboxId` or `mailboxIdOf`. */
export type MailboxId = string & { readonly __brand: "MailboxId" };

/** Text that is not a mailbox id. */
export class MailboxIdError extends Error {
  override readonly name = "MailboxIdError";
}

/** Parses the text form; refuses any length but 52, any character outside a-z2-7, non-zero spare bits. */
export function parseMailboxId(text: string): MailboxId {
  if (text.length !== 52) throw new MailboxIdError("a mailbox id is 52 characters");
  try {
    fromBase32(text);
  } catch (e) {
    throw new MailboxIdError(e instanceof EncodingError ? e.message : "not a mailbox id");
  }
  return text as MailboxId;
}

/** The 32 raw bytes of a mailbox id. */
export function mailboxIdBytes(id: MailboxId): Uint8Array {
  return fromBase32(id);
}

/** The mailbox id of 32 raw bytes. */
export function mailboxIdOf(bytes: Uint8Array): MailboxId {
  if (bytes.length !== 32) throw new MailboxIdError("a mailbox id is 32 bytes");
  return toBase32(bytes) as MailboxId;
}
