//! The host's typed errors, named as the `com.atproto.*` lexicons name them.

use thiserror::Error;

/// Why a host operation failed. [`HostError::name`] is the XRPC error name (from the
/// method's lexicon where it defines one) and [`HostError::status`] the HTTP status the
/// official PDS answers with.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HostError {
    /// The request is malformed (bad identifier, bad record shape, bad cursor…).
    #[error("{0}")]
    InvalidRequest(String),
    /// A record fails its collection's lexicon.
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// No credentials, or credentials this method does not accept.
    #[error("{0}")]
    AuthRequired(String),
    /// A session token that is malformed, revoked, rotated away or signed wrongly.
    #[error("{0}")]
    InvalidToken(String),
    /// A session token past its expiry.
    #[error("token has expired")]
    ExpiredToken,
    /// Wrong identifier or password at login.
    #[error("invalid identifier or password")]
    AuthenticationFailed,
    /// The session belongs to another account than the repo written.
    #[error("{0}")]
    Forbidden(String),
    /// A password that does not meet the rules (createAccount).
    #[error("{0}")]
    InvalidPassword(String),
    /// A handle that is not a valid handle.
    #[error("{0}")]
    InvalidHandle(String),
    /// A handle outside the domains this host serves.
    #[error("{0}")]
    UnsupportedDomain(String),
    /// A handle (or email) already taken.
    #[error("{0}")]
    HandleNotAvailable(String),
    /// No account for this DID or handle.
    #[error("account not found: {0}")]
    AccountNotFound(String),
    /// A handle this host cannot resolve.
    #[error("unable to resolve handle: {0}")]
    HandleNotFound(String),
    /// The account is deactivated.
    #[error("account is deactivated: {0}")]
    AccountDeactivated(String),
    /// No repo for this DID on this host.
    #[error("could not find repo for DID: {0}")]
    RepoNotFound(String),
    /// The repo's account is deactivated.
    #[error("repo has been deactivated: {0}")]
    RepoDeactivated(String),
    /// No record at this path.
    #[error("could not locate record: {0}")]
    RecordNotFound(String),
    /// No blob with this CID in this repo.
    #[error("blob not found: {0}")]
    BlobNotFound(String),
    /// A `swapCommit` or `swapRecord` that did not match.
    #[error("{0}")]
    InvalidSwap(String),
    /// A body larger than allowed.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// getServiceAuth with an expiry too far ahead or in the past.
    #[error("{0}")]
    BadExpiration(String),
    /// The `atproto-proxy` target DID cannot be resolved or has no such service.
    #[error("{0}")]
    ProxyTargetNotFound(String),
    /// Too many attempts of an expensive operation (password checks, account creation)
    /// from one source or against one account.
    #[error("too many {what}; retry in {retry_after_secs} s")]
    RateLimited {
        /// What was counted.
        what: String,
        /// When the next attempt will be allowed, in seconds.
        retry_after_secs: u64,
    },
    /// Storage or another internal failure (the message is for logs, not clients).
    #[error("internal error: {0}")]
    Internal(String),
}

impl HostError {
    /// The XRPC error name.
    pub fn name(&self) -> &'static str {
        match self {
            HostError::InvalidRequest(_) | HostError::InvalidRecord(_) => "InvalidRequest",
            HostError::AuthRequired(_) => "AuthenticationRequired",
            HostError::InvalidToken(_) => "InvalidToken",
            HostError::ExpiredToken => "ExpiredToken",
            HostError::AuthenticationFailed => "AuthenticationRequired",
            HostError::Forbidden(_) => "Forbidden",
            HostError::InvalidPassword(_) => "InvalidPassword",
            HostError::InvalidHandle(_) => "InvalidHandle",
            HostError::UnsupportedDomain(_) => "UnsupportedDomain",
            HostError::HandleNotAvailable(_) => "HandleNotAvailable",
            HostError::AccountNotFound(_) => "AccountNotFound",
            HostError::HandleNotFound(_) => "HandleNotFound",
            HostError::AccountDeactivated(_) => "AccountDeactivated",
            HostError::RepoNotFound(_) => "RepoNotFound",
            HostError::RepoDeactivated(_) => "RepoDeactivated",
            HostError::RecordNotFound(_) => "RecordNotFound",
            HostError::BlobNotFound(_) => "BlobNotFound",
            HostError::InvalidSwap(_) => "InvalidSwap",
            HostError::PayloadTooLarge(_) => "PayloadTooLarge",
            HostError::BadExpiration(_) => "BadExpiration",
            HostError::ProxyTargetNotFound(_) => "InvalidRequest",
            HostError::RateLimited { .. } => "RateLimitExceeded",
            HostError::Internal(_) => "InternalServerError",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            HostError::AuthRequired(_)
            | HostError::InvalidToken(_)
            | HostError::ExpiredToken
            | HostError::AuthenticationFailed => 401,
            HostError::Forbidden(_) => 403,
            HostError::AccountNotFound(_)
            | HostError::RepoNotFound(_)
            | HostError::RecordNotFound(_)
            | HostError::BlobNotFound(_) => 404,
            HostError::PayloadTooLarge(_) => 413,
            HostError::RateLimited { .. } => 429,
            HostError::Internal(_) => 500,
            _ => 400,
        }
    }

    /// The message to send to a client: internal details are replaced by a generic text.
    pub fn client_message(&self) -> String {
        match self {
            HostError::Internal(_) => "internal server error".to_owned(),
            other => other.to_string(),
        }
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        HostError::Internal(e.to_string())
    }
}

impl From<rusqlite::Error> for HostError {
    fn from(e: rusqlite::Error) -> Self {
        HostError::Internal(format!("sqlite: {e}"))
    }
}

impl From<atmls_repo::StoreError> for HostError {
    fn from(e: atmls_repo::StoreError) -> Self {
        HostError::Internal(format!("block store: {e}"))
    }
}

impl From<atmls_repo::RepoError> for HostError {
    fn from(e: atmls_repo::RepoError) -> Self {
        use atmls_repo::RepoError as R;
        match e {
            R::InvalidSwap(s) => HostError::InvalidSwap(s.to_string()),
            R::RecordExists(p) => HostError::InvalidRequest(format!("record already exists: {p}")),
            R::RecordNotFound(p) => HostError::RecordNotFound(p.to_string()),
            R::DuplicateWrite(p) => {
                HostError::InvalidRequest(format!("two writes to {p} in one request"))
            }
            R::RecordNotObject => HostError::InvalidRecord("a record must be an object".into()),
            R::RepoNotFound(did) => HostError::RepoNotFound(did.to_string()),
            other => HostError::Internal(other.to_string()),
        }
    }
}
