//! Why a service-auth token is refused.

use atmls_crypto::Algorithm;
use thiserror::Error;

use crate::{DocumentError, ResolveError};

/// The three parts of a compact JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPart {
    /// The JOSE header.
    Header,
    /// The claims.
    Payload,
    /// The signature.
    Signature,
}

/// Why a service-auth token was refused. One variant per check, in the order checked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ServiceAuthError {
    /// The token is longer than the configured bound (checked before any parsing).
    #[error("token is {len} bytes, more than {max}")]
    TooLarge {
        /// Length of the token.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Not three dot-separated segments.
    #[error("token has {0} segments, expected 3")]
    SegmentCount(usize),
    /// A segment is not canonical unpadded base64url.
    #[error("{0:?} is not valid base64url")]
    Base64(TokenPart),
    /// The header is not a JSON object with a string `alg`.
    #[error("malformed header: {0}")]
    MalformedHeader(String),
    /// `alg` is not ES256K or ES256 (`none` and HS* land here).
    #[error("algorithm {0:?} not allowed")]
    UnsupportedAlgorithm(String),
    /// `typ` is present and not `JWT` (e.g. an access or refresh token).
    #[error("token type {0:?} is not a service-auth JWT")]
    WrongType(String),
    /// The payload is not a JSON object with the claims' types.
    #[error("malformed payload: {0}")]
    MalformedPayload(String),
    /// `iss` is not a DID (optionally with a `#fragment`).
    #[error("issuer {0:?} is not a DID")]
    InvalidIssuer(String),
    /// `kid` does not name a key fragment of the issuer.
    #[error("kid {0:?} does not name a key of the issuer")]
    InvalidKeyId(String),
    /// `aud` is neither the service DID with its fragment nor the bare service DID.
    #[error("audience {found:?} is not {expected:?}")]
    WrongAudience {
        /// The service DID (with fragment, if configured).
        expected: String,
        /// The token's `aud`.
        found: String,
    },
    /// No `lxm` claim.
    #[error("token has no lxm (method) claim")]
    MissingLxm,
    /// `lxm` is not the method being called.
    #[error("token is for method {found:?}, not {expected:?}")]
    WrongLxm {
        /// The method called.
        expected: String,
        /// The token's `lxm`.
        found: String,
    },
    /// No `iat` claim.
    #[error("token has no iat claim")]
    MissingIat,
    /// `iat` is later than now plus the allowed clock skew.
    #[error("token issued in the future (iat {iat}, now {now})")]
    IssuedInFuture {
        /// The token's `iat` (seconds since the Unix epoch, as in the token).
        iat: u64,
        /// The verifier's clock in the same unit.
        now: u64,
    },
    /// `exp` is not after `iat`.
    #[error("token expires before it was issued")]
    ExpiresBeforeIssued,
    /// `exp` is not in the future.
    #[error("token expired (exp {exp}, now {now})")]
    Expired {
        /// The token's `exp` (seconds since the Unix epoch, as in the token).
        exp: u64,
        /// The verifier's clock in the same unit.
        now: u64,
    },
    /// `exp` is further away (from now or from `iat`) than the allowed lifetime.
    #[error("token lifetime exceeds {max_secs} s")]
    LifetimeTooLong {
        /// The allowed lifetime in seconds.
        max_secs: u64,
    },
    /// No `jti` claim, so replay cannot be detected.
    #[error("token has no jti claim")]
    MissingJti,
    /// The signature is not 64 bytes (DER and truncated signatures land here).
    #[error("signature is {0} bytes, expected 64")]
    SignatureLength(usize),
    /// The issuer's DID could not be resolved.
    #[error("cannot resolve issuer: {0}")]
    Resolve(ResolveError),
    /// The issuer's DID document has no usable key under the fragment.
    #[error("issuer has no usable key: {0}")]
    IssuerKey(DocumentError),
    /// The key's curve does not match `alg` (also after refetching the DID document).
    #[error("token alg {alg} does not match the issuer's {key} key")]
    AlgorithmMismatch {
        /// The token's `alg`.
        alg: Algorithm,
        /// The key's curve.
        key: Algorithm,
    },
    /// A high-S signature (malleable form, refused by atproto).
    #[error("high-S signature")]
    HighS,
    /// The signature does not verify against the issuer's key (also after refetching).
    #[error("signature does not verify against the issuer's key")]
    BadSignature,
    /// This `jti` was already used by this issuer within its lifetime.
    #[error("token replayed")]
    Replayed,
    /// The replay store is full of unexpired tokens; refused rather than forget one.
    #[error("replay store full")]
    ReplayStoreFull,
    /// This issuer already holds its share of unexpired tokens in the replay store; its
    /// new tokens are refused until older ones expire (everyone else's still pass).
    #[error("too many live tokens from this issuer")]
    IssuerShareFull,
}

impl ServiceAuthError {
    /// The HTTP status an XRPC server answers with: 502 when the issuer's DID could not
    /// be fetched for reasons outside the caller's control (timeout, transport, a 5xx or
    /// 429 from the directory: [`ResolveError::is_transient`]), 503 when
    /// the replay store is full, 429 when the issuer holds its share of it, 401 for
    /// everything else.
    pub fn http_status(&self) -> u16 {
        match self {
            ServiceAuthError::Resolve(e) if e.is_transient() => 502,
            ServiceAuthError::ReplayStoreFull => 503,
            ServiceAuthError::IssuerShareFull => 429,
            _ => 401,
        }
    }

    /// The XRPC `error` name, from the lexicons' vocabulary: `ExpiredToken` for an expired
    /// token, `InvalidToken` for every other 401, `UpstreamFailure` for a 502 and
    /// `ServiceUnavailable` for a 503. The precise failed check is [`Self::check`], which
    /// servers put at the start of the message.
    pub fn xrpc_error(&self) -> &'static str {
        match (self.http_status(), self) {
            (502, _) => "UpstreamFailure",
            (503, _) => "ServiceUnavailable",
            (429, _) => "RateLimitExceeded",
            (_, ServiceAuthError::Expired { .. }) => "ExpiredToken",
            _ => "InvalidToken",
        }
    }

    /// The name of the check that failed (the variant's name; `UpstreamFailure` for a
    /// resolution failure that is not the issuer's fault).
    pub fn check(&self) -> &'static str {
        use ServiceAuthError as E;
        match self {
            E::TooLarge { .. } => "TooLarge",
            E::SegmentCount(_) => "SegmentCount",
            E::Base64(_) => "Base64",
            E::MalformedHeader(_) => "MalformedHeader",
            E::UnsupportedAlgorithm(_) => "UnsupportedAlgorithm",
            E::WrongType(_) => "WrongType",
            E::MalformedPayload(_) => "MalformedPayload",
            E::InvalidIssuer(_) => "InvalidIssuer",
            E::InvalidKeyId(_) => "InvalidKeyId",
            E::WrongAudience { .. } => "WrongAudience",
            E::MissingLxm => "MissingLxm",
            E::WrongLxm { .. } => "WrongLxm",
            E::MissingIat => "MissingIat",
            E::IssuedInFuture { .. } => "IssuedInFuture",
            E::ExpiresBeforeIssued => "ExpiresBeforeIssued",
            E::Expired { .. } => "Expired",
            E::LifetimeTooLong { .. } => "LifetimeTooLong",
            E::MissingJti => "MissingJti",
            E::SignatureLength(_) => "SignatureLength",
            E::Resolve(_) if self.http_status() == 502 => "UpstreamFailure",
            E::Resolve(_) => "Resolve",
            E::IssuerKey(_) => "IssuerKey",
            E::AlgorithmMismatch { .. } => "AlgorithmMismatch",
            E::HighS => "HighS",
            E::BadSignature => "BadSignature",
            E::Replayed => "Replayed",
            E::ReplayStoreFull => "ReplayStoreFull",
            E::IssuerShareFull => "IssuerShareFull",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xrpc_mapping() {
        assert_eq!(ServiceAuthError::BadSignature.http_status(), 401);
        assert_eq!(ServiceAuthError::BadSignature.xrpc_error(), "InvalidToken");
        assert_eq!(ServiceAuthError::BadSignature.check(), "BadSignature");
        let upstream = ServiceAuthError::Resolve(ResolveError::Timeout);
        assert_eq!(
            (
                upstream.http_status(),
                upstream.xrpc_error(),
                upstream.check()
            ),
            (502, "UpstreamFailure", "UpstreamFailure")
        );
        let gone = ServiceAuthError::Resolve(ResolveError::NotFound);
        assert_eq!(
            (gone.http_status(), gone.xrpc_error(), gone.check()),
            (401, "InvalidToken", "Resolve")
        );
        // A tombstoned issuer is a definite refusal (401, never "try again"); a
        // directory answering 503 is the upstream's failure (502), not the caller's.
        let tombstoned = ServiceAuthError::Resolve(ResolveError::Gone);
        assert_eq!(
            (tombstoned.http_status(), tombstoned.xrpc_error()),
            (401, "InvalidToken")
        );
        let directory_down = ServiceAuthError::Resolve(ResolveError::Status(503));
        assert_eq!(
            (directory_down.http_status(), directory_down.xrpc_error()),
            (502, "UpstreamFailure")
        );
        let expired = ServiceAuthError::Expired { exp: 1, now: 2 };
        assert_eq!(expired.xrpc_error(), "ExpiredToken");
        assert_eq!(ServiceAuthError::ReplayStoreFull.http_status(), 503);
        assert_eq!(
            ServiceAuthError::ReplayStoreFull.xrpc_error(),
            "ServiceUnavailable"
        );
    }
}
