//! Verifying service-auth tokens against the issuer's DID document.

use std::sync::Arc;
use std::time::Duration;

use atmls_crypto::{CryptoError, PublicKey};
use atmls_syntax::Timestamp;

use super::{MemoryReplayStore, ReplayStore, ServiceAuthError, UnverifiedToken, unix_secs};
use crate::{ATPROTO_KEY_FRAGMENT, Did, DidDocument, DidResolver};

/// Settings of a [`ServiceAuthVerifier`].
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    service_did: Did,
    service_fragment: Option<String>,
    max_token_bytes: usize,
    max_lifetime: Duration,
    clock_skew: Duration,
}

impl VerifierConfig {
    /// Tokens addressed to `service_did`. Defaults: tokens up to 4 KiB, lifetime at most
    /// 300 s, 30 s of clock skew allowed on `iat`.
    pub fn new(service_did: Did) -> Self {
        VerifierConfig {
            service_did,
            service_fragment: None,
            max_token_bytes: 4096,
            max_lifetime: Duration::from_secs(300),
            clock_skew: Duration::from_secs(30),
        }
    }

    /// The service's fragment (`chat_mls_ds`): `aud` may then be `did#chat_mls_ds` (or
    /// the bare DID, which the official PDS 0.4 mints).
    pub fn with_service_fragment(mut self, fragment: impl Into<String>) -> Self {
        self.service_fragment = Some(fragment.into());
        self
    }

    /// Longest token accepted, checked before any parsing.
    pub fn with_max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// Longest accepted lifetime: `exp - now` and `exp - iat` may not exceed it (counted
    /// in whole seconds, the unit of the claims).
    pub fn with_max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// How far `iat` may be ahead of the verifier's clock (whole seconds).
    pub fn with_clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// The service DID.
    pub fn service_did(&self) -> &Did {
        &self.service_did
    }

    fn audience(&self) -> String {
        match &self.service_fragment {
            Some(f) => format!("{}#{f}", self.service_did),
            None => self.service_did.to_string(),
        }
    }
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The issuing account.
    pub issuer: Did,
    /// The `#fragment` of `iss`, if any (a service of the issuer).
    pub issuer_service: Option<String>,
    /// The method the token is bound to.
    pub lxm: String,
    /// The token id.
    pub jti: String,
    /// Issue time (the `iat` claim, a whole second).
    pub iat: Timestamp,
    /// Expiry (the `exp` claim, a whole second).
    pub exp: Timestamp,
    /// The issuer's PDS (`#atproto_pds` endpoint) in the DID document whose key verified
    /// the token, if it names one.
    pub issuer_pds: Option<String>,
}

/// A token whose signature and claims verified but whose `jti` is not recorded yet
/// ([`ServiceAuthVerifier::verify_unrecorded`]); [`ServiceAuthVerifier::record`] turns it
/// into a [`VerifiedToken`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnrecordedToken(VerifiedToken);

impl UnrecordedToken {
    /// The verified claims (not yet protected against replay).
    pub fn claims(&self) -> &VerifiedToken {
        &self.0
    }
}

/// Verifies service-auth tokens for one service.
pub struct ServiceAuthVerifier {
    resolver: Arc<dyn DidResolver>,
    replay: Arc<dyn ReplayStore>,
    config: VerifierConfig,
}

impl std::fmt::Debug for ServiceAuthVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAuthVerifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ServiceAuthVerifier {
    /// A verifier resolving issuers with `resolver` and remembering up to 100,000 live
    /// token ids in memory.
    pub fn new(resolver: Arc<dyn DidResolver>, config: VerifierConfig) -> Self {
        ServiceAuthVerifier::with_replay_store(
            resolver,
            Arc::new(MemoryReplayStore::new(100_000)),
            config,
        )
    }

    /// A verifier with its own replay store (e.g. one shared by several processes).
    pub fn with_replay_store(
        resolver: Arc<dyn DidResolver>,
        replay: Arc<dyn ReplayStore>,
        config: VerifierConfig,
    ) -> Self {
        ServiceAuthVerifier {
            resolver,
            replay,
            config,
        }
    }

    /// The settings.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// Verifies `token` for a call of method `lxm` at time `now` (compared with the
    /// claims in whole seconds, rounded down). Checks, in order: size, segments, base64, header (`alg`, `typ`), claims
    /// (`iss`, `kid`, `aud`, `lxm`, `iat`, `exp`, `jti`), then the signature against the
    /// issuer's key (refetching the DID document once if it fails), then replay.
    pub async fn verify(
        &self,
        token: &str,
        lxm: &str,
        now: Timestamp,
    ) -> Result<VerifiedToken, ServiceAuthError> {
        let pending = self.verify_unrecorded(token, lxm, now).await?;
        self.record(pending, now)
    }

    /// Records the `jti` of a token [`Self::verify_unrecorded`] passed (the replay check):
    /// call it once the request's own cheap checks (body, quota) passed, so that a request
    /// refused for them spends nothing of the replay store.
    pub fn record(
        &self,
        pending: UnrecordedToken,
        now: Timestamp,
    ) -> Result<VerifiedToken, ServiceAuthError> {
        let token = pending.0;
        // The store compares with the claims' whole seconds.
        let now = from_unix_secs(unix_secs(now));
        self.replay
            .check_and_insert(token.issuer.as_str(), &token.jti, token.exp, now)?;
        Ok(token)
    }

    /// Every check of [`Self::verify`] but the replay check: the token is not recorded
    /// yet, and is not usable as a [`VerifiedToken`] before [`Self::record`].
    pub async fn verify_unrecorded(
        &self,
        token: &str,
        lxm: &str,
        now: Timestamp,
    ) -> Result<UnrecordedToken, ServiceAuthError> {
        let token = UnverifiedToken::parse(token, self.config.max_token_bytes)?;
        let checked = self.check_claims(&token, lxm, now)?;

        let doc = self
            .resolver
            .resolve(&checked.issuer)
            .await
            .map_err(ServiceAuthError::Resolve)?;
        let doc = match check_signature(&doc, &checked.key_fragment, &token) {
            Ok(()) => doc,
            Err(first) => {
                // The key may have been rotated since the document was cached: refetch once.
                let fresh = self
                    .resolver
                    .resolve_fresh(&checked.issuer)
                    .await
                    .map_err(ServiceAuthError::Resolve)?;
                if Arc::ptr_eq(&fresh, &doc) || *fresh == *doc {
                    return Err(first);
                }
                check_signature(&fresh, &checked.key_fragment, &token)?;
                fresh
            }
        };

        Ok(UnrecordedToken(VerifiedToken {
            issuer: checked.issuer,
            issuer_service: checked.issuer_service,
            lxm: lxm.to_owned(),
            jti: checked.jti,
            iat: from_unix_secs(checked.iat),
            exp: from_unix_secs(checked.exp),
            issuer_pds: doc.pds_endpoint().ok().map(str::to_owned),
        }))
    }

    fn check_claims(
        &self,
        token: &UnverifiedToken,
        lxm: &str,
        now: Timestamp,
    ) -> Result<CheckedClaims, ServiceAuthError> {
        let now = unix_secs(now);
        let claims = &token.claims;
        let (iss, issuer_service) = match claims.iss.split_once('#') {
            Some((did, frag)) if !frag.is_empty() => (did, Some(frag.to_owned())),
            Some(_) => return Err(ServiceAuthError::InvalidIssuer(claims.iss.clone())),
            None => (claims.iss.as_str(), None),
        };
        let issuer =
            Did::new(iss).map_err(|_| ServiceAuthError::InvalidIssuer(claims.iss.clone()))?;
        let key_fragment = match &token.header.kid {
            None => ATPROTO_KEY_FRAGMENT.to_owned(),
            Some(kid) => key_fragment(kid, &issuer)
                .ok_or_else(|| ServiceAuthError::InvalidKeyId(kid.clone()))?,
        };

        let expected = self.config.audience();
        if claims.aud != expected && claims.aud != self.config.service_did.as_str() {
            return Err(ServiceAuthError::WrongAudience {
                expected,
                found: claims.aud.clone(),
            });
        }
        match &claims.lxm {
            None => return Err(ServiceAuthError::MissingLxm),
            Some(found) if found != lxm => {
                return Err(ServiceAuthError::WrongLxm {
                    expected: lxm.to_owned(),
                    found: found.clone(),
                });
            }
            Some(_) => {}
        }

        let iat = claims.iat.ok_or(ServiceAuthError::MissingIat)?;
        if iat > now.saturating_add(self.config.clock_skew.as_secs()) {
            return Err(ServiceAuthError::IssuedInFuture { iat, now });
        }
        if claims.exp <= iat {
            return Err(ServiceAuthError::ExpiresBeforeIssued);
        }
        if claims.exp <= now {
            return Err(ServiceAuthError::Expired {
                exp: claims.exp,
                now,
            });
        }
        let max = self.config.max_lifetime.as_secs();
        if claims.exp - now > max || claims.exp - iat > max {
            return Err(ServiceAuthError::LifetimeTooLong { max_secs: max });
        }
        let jti = claims.jti.clone().ok_or(ServiceAuthError::MissingJti)?;
        if jti.is_empty() || jti.len() > 256 {
            return Err(ServiceAuthError::MissingJti);
        }
        Ok(CheckedClaims {
            issuer,
            issuer_service,
            key_fragment,
            jti,
            iat,
            exp: claims.exp,
        })
    }
}

struct CheckedClaims {
    issuer: Did,
    issuer_service: Option<String>,
    key_fragment: String,
    jti: String,
    iat: u64,
    exp: u64,
}

/// `#frag`, `did#frag` (for the issuer's DID) or a bare `frag` → `frag`.
fn key_fragment(kid: &str, issuer: &Did) -> Option<String> {
    let frag = match kid.split_once('#') {
        Some(("", frag)) => frag,
        Some((did, frag)) if did == issuer.as_str() => frag,
        Some(_) => return None,
        None => kid,
    };
    let ok = !frag.is_empty()
        && frag.len() <= 64
        && frag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    ok.then(|| frag.to_owned())
}

/// The point in time of a claim in whole seconds since the Unix epoch.
fn from_unix_secs(secs: u64) -> Timestamp {
    Timestamp::from_millis(secs.saturating_mul(1000))
}

fn check_signature(
    doc: &DidDocument,
    fragment: &str,
    token: &UnverifiedToken,
) -> Result<(), ServiceAuthError> {
    let key: PublicKey = doc.key(fragment).map_err(ServiceAuthError::IssuerKey)?;
    if key.algorithm() != token.alg {
        return Err(ServiceAuthError::AlgorithmMismatch {
            alg: token.alg,
            key: key.algorithm(),
        });
    }
    key.verify(token.signing_input.as_bytes(), &token.signature)
        .map_err(|e| match e {
            CryptoError::HighS => ServiceAuthError::HighS,
            _ => ServiceAuthError::BadSignature,
        })
}
