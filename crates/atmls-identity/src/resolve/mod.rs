//! DID and handle resolution: the resolver traits, a TTL cache, and (feature
//! `resolve-http`) an HTTP resolver.

mod cache;
#[cfg(feature = "resolve-http")]
mod http;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use thiserror::Error;

pub use cache::{CacheConfig, CachingResolver};
#[cfg(feature = "resolve-http")]
pub use http::{HttpResolver, ResolverConfig};

use crate::{AtprotoDidError, Did, DidDocument, DidHistory, DocumentError, Handle};

/// The future a [`DidResolver`] returns.
pub type ResolveFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<DidDocument>, ResolveError>> + Send + 'a>>;

/// The future of [`DidResolver::resolve_history`].
pub type HistoryFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<DidHistory>, ResolveError>> + Send + 'a>>;

/// The future a [`HandleResolver`] returns.
pub type HandleFuture<'a> = Pin<Box<dyn Future<Output = Result<Did, ResolveError>> + Send + 'a>>;

/// Turns a DID into its current DID document.
///
/// Implementations must check that the document's `id` equals the DID asked for.
pub trait DidResolver: Send + Sync {
    /// Resolves `did`, possibly from a cache.
    fn resolve<'a>(&'a self, did: &'a Did) -> ResolveFuture<'a>;

    /// Resolves `did` bypassing any cache (used once when a signature fails, in case the
    /// key was rotated). The default is [`DidResolver::resolve`].
    fn resolve_fresh<'a>(&'a self, did: &'a Did) -> ResolveFuture<'a> {
        self.resolve(did)
    }

    /// The documents of `did` over time, never from a cache: for did:plc the PLC
    /// directory's audit log ([`DidHistory::from_plc_audit_log`]), which says which
    /// `#atproto` key was in force at an instant. The default, for resolvers that only
    /// know the present (and did:web, which has no history), is the current document for
    /// every instant ([`DidHistory::current`]).
    fn resolve_history<'a>(&'a self, did: &'a Did) -> HistoryFuture<'a> {
        Box::pin(async move {
            let doc = self.resolve_fresh(did).await?;
            Ok(Arc::new(DidHistory::current((*doc).clone())))
        })
    }
}

/// Turns a handle into the DID it claims, via `https://<handle>/.well-known/atproto-did`.
pub trait HandleResolver: Send + Sync {
    /// Resolves `handle` to a DID (unverified: check the DID document's `alsoKnownAs`).
    fn resolve_handle<'a>(&'a self, handle: &'a Handle) -> HandleFuture<'a>;
}

impl<T: DidResolver + ?Sized> DidResolver for Arc<T> {
    fn resolve<'a>(&'a self, did: &'a Did) -> ResolveFuture<'a> {
        (**self).resolve(did)
    }

    fn resolve_fresh<'a>(&'a self, did: &'a Did) -> ResolveFuture<'a> {
        (**self).resolve_fresh(did)
    }

    fn resolve_history<'a>(&'a self, did: &'a Did) -> HistoryFuture<'a> {
        (**self).resolve_history(did)
    }
}

/// Why a DID or handle could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The DID method is not did:plc or did:web, or the DID is malformed for its method.
    #[error("unsupported DID: {0}")]
    UnsupportedDid(#[from] AtprotoDidError),
    /// The server says the DID (or handle) does not exist (HTTP 404).
    #[error("not found")]
    NotFound,
    /// The DID was deactivated or tombstoned (HTTP 410).
    #[error("DID is deactivated or tombstoned")]
    Gone,
    /// The server did not answer within the timeout.
    #[error("resolution timed out")]
    Timeout,
    /// The response body is larger than the configured limit.
    #[error("response larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Connection or protocol failure.
    #[error("transport error: {0}")]
    Transport(String),
    /// Every address of the host is refused by the outbound address policy (loopback,
    /// private, link-local, metadata, …; see `atmls_net::AddressPolicy`). The text names
    /// no address or port.
    #[error("destination refused")]
    Refused,
    /// An HTTP status other than 200, 404 and 410.
    #[error("unexpected HTTP status {0}")]
    Status(u16),
    /// The URL to fetch could not be built.
    #[error("invalid URL {0:?}")]
    InvalidUrl(String),
    /// The body is not a DID document.
    #[error("invalid DID document: {0}")]
    InvalidDocument(#[from] DocumentError),
    /// The document describes another DID than the one asked for.
    #[error("document id {found} does not match {expected}")]
    IdMismatch {
        /// The DID asked for.
        expected: Did,
        /// The `id` in the document.
        found: Did,
    },
    /// The `/.well-known/atproto-did` body is not a DID.
    #[error("handle resolution answered something that is not a DID")]
    InvalidHandleResponse,
    /// The PLC audit log is malformed or its operation chain does not verify.
    #[error("invalid audit log: {0}")]
    InvalidAuditLog(#[from] crate::AuditLogError),
}

impl ResolveError {
    /// The variant's name, for logs: no DID, URL or address in it.
    pub fn kind(&self) -> &'static str {
        match self {
            ResolveError::UnsupportedDid(_) => "UnsupportedDid",
            ResolveError::NotFound => "NotFound",
            ResolveError::Gone => "Gone",
            ResolveError::Timeout => "Timeout",
            ResolveError::TooLarge { .. } => "TooLarge",
            ResolveError::Transport(_) => "Transport",
            ResolveError::Refused => "Refused",
            ResolveError::Status(_) => "Status",
            ResolveError::InvalidUrl(_) => "InvalidUrl",
            ResolveError::InvalidDocument(_) => "InvalidDocument",
            ResolveError::IdMismatch { .. } => "IdMismatch",
            ResolveError::InvalidHandleResponse => "InvalidHandleResponse",
            ResolveError::InvalidAuditLog(_) => "InvalidAuditLog",
        }
    }

    /// Whether the failure may pass if asked again later (timeout, connection failure,
    /// HTTP 408, 425, 429, or 5xx other than 501 and 505). Everything else is a definite
    /// answer: in particular [`ResolveError::Gone`] (a tombstoned or deactivated DID) is
    /// permanent and must never be retried as "unreachable" (docs/spec.md §11.14).
    pub fn is_transient(&self) -> bool {
        match self {
            ResolveError::Timeout | ResolveError::Transport(_) => true,
            ResolveError::Status(s) => {
                matches!(s, 408 | 425 | 429) || ((500..600).contains(s) && !matches!(s, 501 | 505))
            }
            _ => false,
        }
    }

    /// Whether this answer is authoritative enough to cache (negative caching).
    pub fn is_cacheable(&self) -> bool {
        matches!(
            self,
            ResolveError::NotFound | ResolveError::Gone | ResolveError::UnsupportedDid(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tombstoned DID is a definite answer; a directory in trouble is not.
    #[test]
    fn failures_have_a_kind() {
        for e in [
            ResolveError::Gone,
            ResolveError::NotFound,
            ResolveError::Status(400),
            ResolveError::Status(501),
            ResolveError::Refused,
        ] {
            assert!(!e.is_transient(), "{e:?}");
        }
        for e in [
            ResolveError::Timeout,
            ResolveError::Transport("reset".into()),
            ResolveError::Status(503),
            ResolveError::Status(429),
        ] {
            assert!(e.is_transient(), "{e:?}");
        }
    }
}
