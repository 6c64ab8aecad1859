// Mailbox ids (docs/spec.md §2, §9.1): one implementation, in proto/mailbox-id.ts.
export {
  type MailboxId,
  MailboxIdError,
  parseMailboxId,
  mailboxIdBytes,
  mailboxIdOf as mailboxIdFromBytes,
} from "../proto/mailbox-id.js";
