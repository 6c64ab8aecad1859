//! The host's own session tokens: compact JWTs signed with HMAC-SHA256 under a server
//! secret, as the official PDS makes them.
//!
//! They are told apart from service-auth tokens (ES256K/ES256, `typ: JWT`, signed by an
//! account's repo key) by three things: `alg` is `HS256`, `typ` is `at+jwt` (access) or
//! `refresh+jwt` (refresh), and `scope` is `com.atproto.access` or `com.atproto.refresh`.

use atmls_identity::service_auth::unix_secs;
use atmls_syntax::Timestamp;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::HostError;

/// Longest session token accepted, checked before decoding.
const MAX_TOKEN_BYTES: usize = 4096;

/// Which kind of session token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenKind {
    /// Short-lived, for calling methods.
    Access,
    /// Long-lived, only for `refreshSession` and `deleteSession`; rotated on refresh.
    Refresh,
}

impl TokenKind {
    /// The `typ` header value.
    pub fn typ(self) -> &'static str {
        match self {
            TokenKind::Access => "at+jwt",
            TokenKind::Refresh => "refresh+jwt",
        }
    }

    /// The `scope` claim.
    pub fn scope(self) -> &'static str {
        match self {
            TokenKind::Access => "com.atproto.access",
            TokenKind::Refresh => "com.atproto.refresh",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    typ: String,
    alg: String,
}

/// The claims of a session token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// `com.atproto.access` or `com.atproto.refresh`.
    pub scope: String,
    /// The account's DID.
    pub sub: String,
    /// The host's DID.
    pub aud: String,
    /// Issued at (seconds since the Unix epoch).
    pub iat: u64,
    /// Expiry (seconds since the Unix epoch).
    pub exp: u64,
    /// Token id: a random id of this refresh token; for access tokens, the id of the
    /// session they belong to.
    pub jti: String,
    /// The session id (both kinds), so that `deleteSession` revokes every token of it.
    pub sid: String,
}

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length.
    HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key"))
}

/// Signs `claims` as a token of `kind`.
pub fn encode(secret: &[u8], kind: TokenKind, claims: &SessionClaims) -> String {
    let header = Header {
        typ: kind.typ().to_owned(),
        alg: "HS256".to_owned(),
    };
    // Plain structs of strings and integers always serialize.
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default());
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let input = format!("{header}.{payload}");
    let mut m = mac(secret);
    m.update(input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    format!("{input}.{sig}")
}

/// Checks a token's shape, signature, kind and expiry at `now` (compared with `exp` in
/// whole seconds, rounded down), and returns its claims. Revocation is checked by the
/// caller against the session table.
pub fn decode(
    secret: &[u8],
    kind: TokenKind,
    token: &str,
    now: Timestamp,
) -> Result<SessionClaims, HostError> {
    let now = unix_secs(now);
    let bad = |why: &str| HostError::InvalidToken(format!("bad token: {why}"));
    if token.len() > MAX_TOKEN_BYTES {
        return Err(bad("too long"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not a compact JWT"));
    };
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad("signature"))?;
    let mut m = mac(secret);
    m.update(h.as_bytes());
    m.update(b".");
    m.update(p.as_bytes());
    m.verify_slice(&sig)
        .map_err(|_| bad("signature does not verify"))?;
    let header: Header = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("header"))?;
    if header.alg != "HS256" || header.typ != kind.typ() {
        return Err(bad("wrong token type"));
    }
    let claims: SessionClaims = URL_SAFE_NO_PAD
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("payload"))?;
    if claims.scope != kind.scope() {
        return Err(bad("wrong scope"));
    }
    if now >= claims.exp {
        return Err(HostError::ExpiredToken);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Timestamp {
        Timestamp::from_millis(s * 1000)
    }

    fn claims(scope: &str, exp: u64) -> SessionClaims {
        SessionClaims {
            scope: scope.into(),
            sub: "did:plc:abc".into(),
            aud: "did:web:localhost".into(),
            iat: 100,
            exp,
            jti: "j".into(),
            sid: "s".into(),
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let secret = b"secret";
        let t = encode(
            secret,
            TokenKind::Access,
            &claims("com.atproto.access", 200),
        );
        assert_eq!(
            decode(secret, TokenKind::Access, &t, secs(150))
                .unwrap()
                .sub,
            "did:plc:abc"
        );
        assert!(matches!(
            decode(secret, TokenKind::Access, &t, secs(200)),
            Err(HostError::ExpiredToken)
        ));
        assert!(matches!(
            decode(secret, TokenKind::Refresh, &t, secs(150)),
            Err(HostError::InvalidToken(_))
        ));
        assert!(matches!(
            decode(b"other", TokenKind::Access, &t, secs(150)),
            Err(HostError::InvalidToken(_))
        ));
        // A refresh-typed token carrying the access scope is refused.
        let mixed = encode(
            secret,
            TokenKind::Refresh,
            &claims("com.atproto.access", 200),
        );
        assert!(decode(secret, TokenKind::Refresh, &mixed, secs(150)).is_err());
        for junk in ["", "a.b", "a.b.c.d", "!!.!!.!!", &"x".repeat(5000)] {
            assert!(decode(secret, TokenKind::Access, junk, secs(150)).is_err());
        }
    }
}
