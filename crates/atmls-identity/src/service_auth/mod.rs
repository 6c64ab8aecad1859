//! Service-auth JWTs (atproto XRPC "inter-service auth"): issue and verify.
//!
//! A token is `base64url(header) . base64url(payload) . base64url(signature)`, all
//! unpadded; the header is `{"typ":"JWT","alg":"ES256K"|"ES256"}` (optionally `kid`), the
//! payload carries `iss`, `aud`, `exp`, `iat`, `lxm` and `jti`, and the signature is the
//! low-S compact ECDSA signature of `header.payload` by the issuer's `#atproto` key.
//! [`ServiceAuthVerifier`] checks, in order: size, shape, header, claims, times, the
//! signature (refetching the issuer's DID document once if it fails), then replay.

mod error;
mod issue;
mod parse;
mod replay;
mod verify;

pub use error::{ServiceAuthError, TokenPart};
pub use issue::{issue, unix_secs};
pub use parse::{Claims, Header, UnverifiedToken};
pub use replay::{MemoryReplayStore, ReplayStore};
pub use verify::{ServiceAuthVerifier, UnrecordedToken, VerifiedToken, VerifierConfig};
