//! Typed errors of the core, one per operation. Each maps to the lexicon's error name
//! through `name()` (an [`ErrorName`], whose status is fixed by the wire crate), so the
//! server can answer `{"error": name, "message": to_string()}`.

use crate::auth::ReplayShare;
use crate::store::StoreError;
use atmls_ds_proto::EnvelopeKind;

use atmls_ds_proto::ErrorName;

/// The XRPC name of errors that are the service's fault.
const INTERNAL: ErrorName = ErrorName::InternalServerError;

/// The XRPC name of a transient refusal: nothing was done, try again.
const UNAVAILABLE: ErrorName = ErrorName::ServiceUnavailable;

/// Whether a store failure is answered `ServiceUnavailable` (nothing stored, send again):
/// a transient database failure, or a mailbox head that other processes kept moving
/// until the shell stopped deciding again.
fn retry_later(e: &StoreError) -> bool {
    e.is_transient() || matches!(e, StoreError::HeadMoved { .. })
}

/// A mailbox-key authorisation was refused. Checked in this order: token present and
/// well-formed, timestamp, signature, (mailbox exists), key registered and usable, nonce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No mailbox authorisation at all.
    #[error("the request carries no mailbox signature")]
    AuthRequired,
    /// The token is not 160 characters of base64url encoding 120 bytes.
    #[error("malformed mailbox token")]
    BadToken,
    /// The signed timestamp is further than the allowed age from `now`.
    #[error("the signed timestamp is {skew_ms} ms from the server's clock")]
    RequestExpired {
        /// How far the timestamp was from `now`, in milliseconds.
        skew_ms: u64,
    },
    /// The signature does not verify with the token's key.
    #[error("the mailbox signature does not verify")]
    BadSignature,
    /// The key is not registered for the mailbox, or its epoch's grace window has passed.
    #[error("the key is not (or no longer) valid for this mailbox")]
    KeyExpired,
    /// An inbox request not signed with the inbox's owner key.
    #[error("the request is not signed with the inbox's owner key")]
    NotOwner,
    /// The nonce was already used with this key within the replay window.
    #[error("the signed nonce was already used")]
    ReplayedRequest,
    /// The replay cache is full of unexpired nonces; try again later.
    #[error("too many signed requests; try again later")]
    ReplayCacheFull,
    /// This key, mailbox or source already holds its share of the replay cache; it may
    /// sign again once its older requests leave the replay window.
    #[error("too many signed requests from this {0}; try again later")]
    ReplayShareExceeded(ReplayShare),
}

impl From<atmls_ds_proto::TokenError> for AuthError {
    fn from(e: atmls_ds_proto::TokenError) -> Self {
        match e {
            atmls_ds_proto::TokenError::BadSignature => Self::BadSignature,
            _ => Self::BadToken,
        }
    }
}

impl AuthError {
    /// The lexicon error name.
    pub fn name(&self) -> ErrorName {
        match self {
            Self::AuthRequired => ErrorName::AuthRequired,
            // The lexicons have no separate name for a malformed token: it is a
            // signature that does not verify.
            Self::BadToken => ErrorName::BadToken,
            Self::BadSignature => ErrorName::BadSignature,
            Self::RequestExpired { .. } => ErrorName::RequestExpired,
            Self::KeyExpired => ErrorName::KeyExpired,
            Self::NotOwner => ErrorName::NotOwner,
            Self::ReplayedRequest => ErrorName::ReplayedRequest,
            Self::ReplayCacheFull | Self::ReplayShareExceeded(_) => ErrorName::RateLimitExceeded,
        }
    }
}

/// `chat.mls.ds.createMailbox` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateMailboxError {
    /// `key` is not a valid Ed25519 public key.
    #[error("key is not a valid Ed25519 public key")]
    InvalidKey,
    /// `epoch` is larger than [`crate::MAX_EPOCH`].
    #[error("epoch {epoch} is out of range (at most {max})")]
    EpochOutOfRange {
        /// The epoch asked for.
        epoch: u64,
        /// The largest epoch allowed.
        max: u64,
    },
    /// The account already has `max` mailboxes.
    #[error("the account already has {max} mailboxes")]
    QuotaExceeded {
        /// The per-account limit.
        max: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CreateMailboxError {
    /// The lexicon error name.
    pub fn name(&self) -> ErrorName {
        match self {
            Self::InvalidKey => ErrorName::InvalidKey,
            Self::EpochOutOfRange { .. } => ErrorName::InvalidRequest,
            Self::QuotaExceeded { .. } => ErrorName::QuotaExceeded,
            Self::Store(e) if retry_later(e) => UNAVAILABLE,
            Self::Store(_) => INTERNAL,
        }
    }
}

/// Why an envelope of a batch breaks a rule (`InvalidEnvelope`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeRule {
    /// The mailbox is an inbox: only `sendWelcome` deposits into it.
    #[error("the mailbox is an inbox; use sendWelcome")]
    NotAGroup,
    /// A kind a group mailbox does not accept (`welcome`).
    #[error("kind {0} is not allowed in a group mailbox")]
    Kind(EnvelopeKind),
    /// More than one commit in the batch.
    #[error("more than one commit in the batch")]
    TwoCommits,
    /// A commit without `epoch`.
    #[error("a commit must carry epoch")]
    CommitWithoutEpoch,
    /// A commit without `nextKey`.
    #[error("a commit must carry nextKey")]
    CommitWithoutNextKey,
    /// `nextKey` is not a valid Ed25519 public key.
    #[error("nextKey is not a valid Ed25519 public key")]
    InvalidNextKey,
    /// `nextKey` on an envelope that is not a commit.
    #[error("nextKey on an envelope that is not a commit")]
    NextKeyOnMessage,
    /// An empty payload.
    #[error("empty payload")]
    EmptyPayload,
    /// The commit is built on the largest epoch allowed ([`crate::MAX_EPOCH`]), or on a
    /// larger one.
    #[error("epoch out of range (a commit may be built on epochs below {max})", max = crate::MAX_EPOCH)]
    EpochOverflow,
    /// `messageLifetime` on an envelope that is not a commit.
    #[error("messageLifetime on an envelope that is not a commit")]
    LifetimeOnMessage,
    /// `messageLifetime` neither 0 nor within 60 s..=365 days.
    #[error("messageLifetime must be 0 or between 60 and 31536000 seconds")]
    LifetimeOutOfBounds,
}

/// Why a mailbox cannot take more (`MailboxFull`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MailboxFull {
    /// The batch would pass the largest sequence number ([`crate::MAX_SEQ`]).
    #[error("the mailbox has used its sequence numbers (at most {max})")]
    Sequence {
        /// The largest sequence number.
        max: u64,
    },
    /// The batch would pass the mailbox's stored-bytes cap.
    #[error("the mailbox holds {stored} payload bytes; {adding} more would pass its cap of {max}")]
    Bytes {
        /// Payload bytes stored now.
        stored: u64,
        /// Payload bytes of the refused batch.
        adding: u64,
        /// The cap ([`crate::DsConfig::max_mailbox_bytes`]).
        max: u64,
    },
}

/// `chat.mls.ds.sendEnvelopes` failed; nothing of the batch was stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendEnvelopesError {
    /// No such mailbox.
    #[error("no such mailbox")]
    MailboxNotFound,
    /// The mailbox-key authorisation was refused.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The batch is empty.
    #[error("the batch is empty")]
    EmptyBatch,
    /// More envelopes than allowed.
    #[error("{len} envelopes in the batch, at most {max} allowed")]
    BatchTooLarge {
        /// Envelopes in the batch.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A payload larger than allowed.
    #[error("envelope {index}: payload of {len} bytes, at most {max} allowed")]
    EnvelopeTooLarge {
        /// Position in the batch.
        index: usize,
        /// Its payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An envelope breaks a rule.
    #[error("envelope {index}: {rule}")]
    InvalidEnvelope {
        /// Position in the batch.
        index: usize,
        /// The rule it breaks.
        rule: EnvelopeRule,
    },
    /// The commit's epoch is not the mailbox's current epoch.
    #[error("mailbox is at epoch {current_epoch}")]
    EpochConflict {
        /// The mailbox's current epoch.
        current_epoch: u64,
        /// The mailbox's last sequence number.
        current_seq: u64,
    },
    /// The mailbox cannot take the batch.
    #[error(transparent)]
    MailboxFull(MailboxFull),
    /// The request was decided after an earlier request to the same mailbox whose write
    /// then failed: its answer may no longer hold. Nothing of it was stored; send it again
    /// (with a new token).
    #[error("an earlier write to this mailbox failed; nothing was stored, try again")]
    Interrupted,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SendEnvelopesError {
    /// The lexicon error name.
    pub fn name(&self) -> ErrorName {
        match self {
            Self::MailboxNotFound => ErrorName::MailboxNotFound,
            Self::Auth(e) => e.name(),
            Self::EmptyBatch => ErrorName::InvalidRequest,
            Self::BatchTooLarge { .. } => ErrorName::BatchTooLarge,
            Self::EnvelopeTooLarge { .. } => ErrorName::EnvelopeTooLarge,
            Self::InvalidEnvelope { .. } => ErrorName::InvalidEnvelope,
            Self::EpochConflict { .. } => ErrorName::EpochConflict,
            Self::MailboxFull(_) => ErrorName::MailboxFull,
            Self::Interrupted => UNAVAILABLE,
            Self::Store(e) if retry_later(e) => UNAVAILABLE,
            Self::Store(_) => INTERNAL,
        }
    }
}

/// `getMailbox`, `getEnvelopes` or a subscription's authorisation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No such mailbox.
    #[error("no such mailbox")]
    MailboxNotFound,
    /// The mailbox-key authorisation was refused.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The cursor is beyond the mailbox's last sequence number.
    #[error("cursor {cursor} is beyond the mailbox's last sequence number {head}")]
    FutureCursor {
        /// The cursor asked for.
        cursor: u64,
        /// The mailbox's last sequence number.
        head: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ReadError {
    /// The lexicon error name.
    pub fn name(&self) -> ErrorName {
        match self {
            Self::MailboxNotFound => ErrorName::MailboxNotFound,
            Self::Auth(e) => e.name(),
            Self::FutureCursor { .. } => ErrorName::FutureCursor,
            Self::Store(e) if retry_later(e) => UNAVAILABLE,
            Self::Store(_) => INTERNAL,
        }
    }
}

/// `chat.mls.ds.sendWelcome` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendWelcomeError {
    /// No such inbox.
    #[error("no such inbox")]
    MailboxNotFound,
    /// The mailbox is a group mailbox.
    #[error("the mailbox is a group mailbox")]
    NotAnInbox,
    /// An empty payload.
    #[error("empty payload")]
    EmptyPayload,
    /// A payload larger than allowed.
    #[error("payload of {len} bytes, at most {max} allowed")]
    EnvelopeTooLarge {
        /// The payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Too many deposits (or deposited bytes) into this inbox in the current minute.
    #[error("too many deposits into this inbox; retry after {retry_after_ms} ms")]
    RateLimitExceeded {
        /// Milliseconds until the window resets.
        retry_after_ms: u64,
    },
    /// The inbox cannot take the welcome until its owner deletes items.
    #[error(transparent)]
    MailboxFull(MailboxFull),
    /// Decided after an earlier deposit into the same inbox whose write then failed;
    /// nothing was stored, send it again.
    #[error("an earlier write to this inbox failed; nothing was stored, try again")]
    Interrupted,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SendWelcomeError {
    /// The lexicon error name.
    pub fn name(&self) -> ErrorName {
        match self {
            Self::MailboxNotFound => ErrorName::MailboxNotFound,
            Self::NotAnInbox => ErrorName::NotAnInbox,
            Self::EmptyPayload => ErrorName::InvalidRequest,
            Self::EnvelopeTooLarge { .. } => ErrorName::EnvelopeTooLarge,
            Self::RateLimitExceeded { .. } => ErrorName::RateLimitExceeded,
            Self::MailboxFull(_) => ErrorName::MailboxFull,
            Self::Interrupted => UNAVAILABLE,
            Self::Store(e) if retry_later(e) => UNAVAILABLE,
            Self::Store(_) => INTERNAL,
        }
    }
}

/// `chat.mls.ds.listInbox` or `chat.mls.ds.deleteInboxItems` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InboxError {
    /// No such inbox.
    #[error("no such inbox")]
    MailboxNotFound,
    /// The mailbox is a group mailbox.
    #[error("the mailbox is a group mailbox")]
    NotAnInbox,
    /// The owner-key authorisation was refused.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The cursor is beyond the inbox's last sequence number.
    #[error("cursor {cursor} is beyond the inbox's last sequence number {head}")]
    FutureCursor {
        /// The cursor asked for.
        cursor: u64,
        /// The inbox's last sequence number.
        head: u64,
    },
    /// `seqs` is empty or longer than 100.
    #[error("between 1 and 100 sequence numbers, got {0}")]
    SeqCount(usize),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl InboxError {
    /// The lexicon error name.
    pub fn name(&self) -> ErrorName {
        match self {
            Self::MailboxNotFound => ErrorName::MailboxNotFound,
            Self::NotAnInbox => ErrorName::NotAnInbox,
            Self::Auth(e) => e.name(),
            Self::FutureCursor { .. } => ErrorName::FutureCursor,
            Self::SeqCount(_) => ErrorName::InvalidRequest,
            Self::Store(e) if retry_later(e) => UNAVAILABLE,
            Self::Store(_) => INTERNAL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atmls_ds_proto::MailboxId;

    /// A head that other processes kept moving is retryable, never a 500.
    #[test]
    fn a_moving_head_is_service_unavailable() {
        let moved = || StoreError::HeadMoved {
            mailbox: MailboxId::from_bytes([1; 32]),
            expected: 3,
            actual: 4,
        };
        assert_eq!(
            SendEnvelopesError::Store(moved()).name(),
            ErrorName::ServiceUnavailable
        );
        assert_eq!(
            SendWelcomeError::Store(moved()).name(),
            ErrorName::ServiceUnavailable
        );
        assert_eq!(
            SendEnvelopesError::Store(StoreError::Corrupt("x".into())).name(),
            ErrorName::InternalServerError
        );
    }
}
