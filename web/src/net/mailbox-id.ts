// Mailbox ids (docs/spec.md §2, §9.1): 32 bytes, lowercase base32 without padding, 52 characters.
import { base32Decode, base32Encode, EncodingError } from "./encoding.js";

/** A mailbox id in its one canonical text form. Build it with {@link parseMailboxId}. */
export type MailboxId = string & { readonly __brand: "MailboxId" };

/** Thrown for a string that is not a canonical mailbox id. */
export class MailboxIdError extends Error {
  override readonly name = "MailboxIdError";
}

/** Parses a mailbox id: exactly 52 characters of `a-z2-7`, trailing 4 bits zero (§9.1). */
export function parseMailboxId(text: string): MailboxId {
  if (text.length !== 52) throw new MailboxIdError("mailbox id: not 52 characters");
  try {
    base32Decode(text);
  } catch (e) {
    throw new MailboxIdError(`mailbox id: ${e instanceof EncodingError ? e.message : "malformed"}`);
  }
  return text as MailboxId;
}

/** The 32 raw bytes of a mailbox id (what the request signature covers, §9.4.2). */
export function mailboxIdBytes(id: MailboxId): Uint8Array {
  return base32Decode(id);
}

/** The text form of 32 raw bytes. */
export function mailboxIdFromBytes(bytes: Uint8Array): MailboxId {
  if (bytes.length !== 32) throw new MailboxIdError("mailbox id: not 32 bytes");
  return base32Encode(bytes) as MailboxId;
}
