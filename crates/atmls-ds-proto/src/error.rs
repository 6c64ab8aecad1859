//! Error names, their HTTP statuses (`docs/spec.md` §7), and the typed decode error.

use std::fmt;

/// An XRPC error name a delivery service answers (`docs/spec.md` §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorName {
    /// The request does not match the method's lexicon.
    InvalidRequest,
    /// No token, no mailbox signature.
    AuthRequired,
    /// A service-auth token failed verification.
    InvalidToken,
    /// A service-auth token expired.
    ExpiredToken,
    /// The caller's DID document could not be fetched.
    UpstreamFailure,
    /// The service cannot take the request now; nothing was done, retry.
    ServiceUnavailable,
    /// The service failed.
    InternalServerError,
    /// The method is not offered.
    MethodNotImplemented,
    /// The mailbox authorization is not a well-formed 120-byte token.
    BadToken,
    /// The mailbox signature does not verify.
    BadSignature,
    /// The mailbox key is past its epoch's grace window, or not registered.
    KeyExpired,
    /// The signed timestamp is too far from the server's clock.
    RequestExpired,
    /// The signed nonce was already used.
    ReplayedRequest,
    /// An inbox request not signed by the owner key.
    NotOwner,
    /// `createMailbox`: the DS does not serve the caller's PDS.
    AccountNotServed,
    /// No such mailbox.
    MailboxNotFound,
    /// An inbox method on a group mailbox.
    NotAnInbox,
    /// Unknown mailbox kind.
    UnsupportedKind,
    /// Not an Ed25519 public key.
    InvalidKey,
    /// An envelope breaks a rule.
    InvalidEnvelope,
    /// The cursor is beyond the mailbox's head.
    FutureCursor,
    /// The commit is not built on the current epoch.
    EpochConflict,
    /// A payload over `maxEnvelopeBytes`.
    EnvelopeTooLarge,
    /// More than `maxBatchEnvelopes` envelopes.
    BatchTooLarge,
    /// The account has `maxMailboxesPerAccount` mailboxes.
    QuotaExceeded,
    /// A per-principal share is used up; retry later.
    RateLimitExceeded,
    /// The mailbox cannot take more; nothing was stored.
    MailboxFull,
    /// A subscriber did not keep up (subscription error frame).
    ConsumerTooSlow,
}

impl ErrorName {
    /// Every name, in the order of `docs/spec.md` §7.
    pub const ALL: [Self; 28] = [
        Self::InvalidRequest,
        Self::AuthRequired,
        Self::InvalidToken,
        Self::ExpiredToken,
        Self::UpstreamFailure,
        Self::ServiceUnavailable,
        Self::InternalServerError,
        Self::MethodNotImplemented,
        Self::BadToken,
        Self::BadSignature,
        Self::KeyExpired,
        Self::RequestExpired,
        Self::ReplayedRequest,
        Self::NotOwner,
        Self::AccountNotServed,
        Self::MailboxNotFound,
        Self::NotAnInbox,
        Self::UnsupportedKind,
        Self::InvalidKey,
        Self::InvalidEnvelope,
        Self::FutureCursor,
        Self::EpochConflict,
        Self::EnvelopeTooLarge,
        Self::BatchTooLarge,
        Self::QuotaExceeded,
        Self::RateLimitExceeded,
        Self::MailboxFull,
        Self::ConsumerTooSlow,
    ];

    /// The name as sent in the `error` field.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "InvalidRequest",
            Self::AuthRequired => "AuthRequired",
            Self::InvalidToken => "InvalidToken",
            Self::ExpiredToken => "ExpiredToken",
            Self::UpstreamFailure => "UpstreamFailure",
            Self::ServiceUnavailable => "ServiceUnavailable",
            Self::InternalServerError => "InternalServerError",
            Self::MethodNotImplemented => "MethodNotImplemented",
            Self::BadToken => "BadToken",
            Self::BadSignature => "BadSignature",
            Self::KeyExpired => "KeyExpired",
            Self::RequestExpired => "RequestExpired",
            Self::ReplayedRequest => "ReplayedRequest",
            Self::NotOwner => "NotOwner",
            Self::AccountNotServed => "AccountNotServed",
            Self::MailboxNotFound => "MailboxNotFound",
            Self::NotAnInbox => "NotAnInbox",
            Self::UnsupportedKind => "UnsupportedKind",
            Self::InvalidKey => "InvalidKey",
            Self::InvalidEnvelope => "InvalidEnvelope",
            Self::FutureCursor => "FutureCursor",
            Self::EpochConflict => "EpochConflict",
            Self::EnvelopeTooLarge => "EnvelopeTooLarge",
            Self::BatchTooLarge => "BatchTooLarge",
            Self::QuotaExceeded => "QuotaExceeded",
            Self::RateLimitExceeded => "RateLimitExceeded",
            Self::MailboxFull => "MailboxFull",
            Self::ConsumerTooSlow => "ConsumerTooSlow",
        }
    }

    /// The name of its wire text; `None` for a name this version does not know.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.as_str() == s)
    }

    /// The HTTP status a delivery service answers it with (`docs/spec.md` §7); 400 for
    /// the names §7 lists as 400 and for `ConsumerTooSlow` (never an HTTP answer).
    pub const fn status(self) -> u16 {
        match self {
            Self::AuthRequired
            | Self::InvalidToken
            | Self::ExpiredToken
            | Self::BadToken
            | Self::BadSignature
            | Self::KeyExpired
            | Self::RequestExpired
            | Self::ReplayedRequest => 401,
            Self::NotOwner | Self::AccountNotServed => 403,
            Self::MailboxNotFound => 404,
            Self::EpochConflict => 409,
            Self::EnvelopeTooLarge | Self::BatchTooLarge => 413,
            Self::QuotaExceeded | Self::RateLimitExceeded | Self::MailboxFull => 429,
            Self::InternalServerError => 500,
            Self::MethodNotImplemented => 501,
            Self::UpstreamFailure => 502,
            Self::ServiceUnavailable => 503,
            Self::InvalidRequest
            | Self::NotAnInbox
            | Self::UnsupportedKind
            | Self::InvalidKey
            | Self::InvalidEnvelope
            | Self::FutureCursor
            | Self::ConsumerTooSlow => 400,
        }
    }
}

impl fmt::Display for ErrorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<ErrorName> for &str {
    fn eq(&self, other: &ErrorName) -> bool {
        *self == other.as_str()
    }
}

/// The HTTP status of an error name as sent on the wire: the §7 table for the names it
/// knows, 400 for any other.
pub fn status_of_name(name: &str) -> u16 {
    ErrorName::from_name(name).map_or(400, ErrorName::status)
}

/// The mailbox's state an `EpochConflict` answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochConflict {
    /// The mailbox's current epoch.
    pub current_epoch: u64,
    /// The mailbox's last sequence number.
    pub current_seq: u64,
}

/// A decoded XRPC error body: `{"error", "message"}`, plus `currentEpoch` and
/// `currentSeq` for `EpochConflict`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// The name as sent (a name this version does not know is kept as text).
    pub error: String,
    /// The message, if any.
    pub message: Option<String>,
    /// For `EpochConflict`: the mailbox's epoch and head.
    pub conflict: Option<EpochConflict>,
}

impl ErrorBody {
    /// The typed name, if this version knows it.
    pub fn name(&self) -> Option<ErrorName> {
        ErrorName::from_name(&self.error)
    }
}

/// A body or frame that does not have the shape the lexicon gives it. Never replaced by
/// a default: the reader refuses the answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not JSON (or DAG-CBOR) of the lexicon's shape: a field missing or of the wrong
    /// type.
    #[error("malformed {what}: {reason}")]
    Shape {
        /// What was decoded, e.g. `getEnvelopes output`.
        what: &'static str,
        /// The parser's reason.
        reason: String,
    },
    /// A mailbox or envelope kind this version does not know.
    #[error("{field}: {kind}")]
    UnknownKind {
        /// The field.
        field: String,
        /// The kind sent.
        kind: crate::id::UnknownKind,
    },
    /// A field is present but its value is out of range or not of its format.
    #[error("{field}: {reason}")]
    Field {
        /// The field, as a path (`envelopes/3/receivedAt`).
        field: String,
        /// Why it is refused.
        reason: String,
    },
}

impl DecodeError {
    /// The XRPC error a server answers a request that does not decode with:
    /// `UnsupportedKind` for an unknown mailbox kind, else `InvalidRequest`.
    pub fn error_name(&self) -> ErrorName {
        match self {
            Self::UnknownKind { .. } => ErrorName::UnsupportedKind,
            _ => ErrorName::InvalidRequest,
        }
    }

    pub(crate) fn field(field: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self::Field {
            field: field.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn shape(what: &'static str, reason: impl fmt::Display) -> Self {
        Self::Shape {
            what,
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_have_the_spec_status() {
        for name in ErrorName::ALL {
            assert_eq!(ErrorName::from_name(name.as_str()), Some(name));
        }
        assert_eq!(ErrorName::EpochConflict.status(), 409);
        assert_eq!(ErrorName::NotOwner.status(), 403);
        assert_eq!(ErrorName::MailboxFull.status(), 429);
        assert_eq!(ErrorName::ServiceUnavailable.status(), 503);
        assert_eq!(status_of_name("SomethingNew"), 400);
        assert_eq!(ErrorName::from_name("epochconflict"), None);
    }
}
