//! Limits the wire itself fixes: what the lexicons allow and what every backend stores.

/// The largest payload the lexicons allow (`maxLength` of envelope payloads).
pub const LEXICON_MAX_PAYLOAD: usize = 4_194_304;

/// The largest page `getEnvelopes` and `listInbox` return (`maximum` of `limit`).
pub const LEXICON_MAX_PAGE: u32 = 1000;

/// The most sequence numbers one `deleteInboxItems` call may name.
pub const LEXICON_MAX_DELETE: usize = 100;

/// Most mailboxes one subscription may name (the lexicon's `maxLength`).
pub const LEXICON_MAX_SUBSCRIPTION_MAILBOXES: usize = 100;

/// The largest epoch a group mailbox may reach: 2^53 − 1, the largest integer every
/// backend stores (SQLite and PostgreSQL hold `i64`) and every JSON reader parses exactly
/// (a JavaScript `number`). `createMailbox` refuses a larger `epoch`, and a commit built
/// on this epoch is refused (`InvalidEnvelope`: it would move the epoch past it).
pub const MAX_EPOCH: u64 = (1 << 53) - 1;

/// The largest sequence number a mailbox may give out (2^53 − 1, as [`MAX_EPOCH`]). A
/// batch that would go past it is refused with `MailboxFull`.
pub const MAX_SEQ: u64 = (1 << 53) - 1;
