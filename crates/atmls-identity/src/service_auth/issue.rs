//! Minting service-auth tokens.

use std::time::Duration;

use atmls_crypto::SigningKey;
use atmls_syntax::Timestamp;

use super::parse::encode;
use super::{Claims, Header};

/// Signs `claims` with `key` (the issuer's `#atproto` key) as a compact JWT with header
/// `{"typ":"JWT","alg":…}`.
pub fn issue(key: &SigningKey, claims: &Claims) -> String {
    let header = Header {
        typ: Some("JWT".to_owned()),
        alg: key.algorithm().jwt_name().to_owned(),
        kid: None,
    };
    issue_with_header(key, &header, claims)
}

/// Signs `claims` under an explicit header (e.g. with a `kid`).
pub(crate) fn issue_with_header(key: &SigningKey, header: &Header, claims: &Claims) -> String {
    // Plain structs of strings and integers always serialise.
    let header = encode(&serde_json::to_vec(header).unwrap_or_default());
    let payload = encode(&serde_json::to_vec(claims).unwrap_or_default());
    let input = format!("{header}.{payload}");
    let sig = encode(&key.sign(input.as_bytes()));
    format!("{input}.{sig}")
}

impl Claims {
    /// Claims for a token from `iss` to `aud` for method `lxm`, issued at `issued_at`,
    /// valid for `lifetime`, with a random 128-bit `jti`. `iat` and `exp` are written in
    /// whole seconds (the JWT format): `iat` is `issued_at` rounded down, `exp` is `iat`
    /// plus the whole seconds of `lifetime`.
    pub fn new(iss: &str, aud: &str, lxm: &str, issued_at: Timestamp, lifetime: Duration) -> Self {
        let nonce: [u8; 16] = rand::random();
        let jti = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let iat = unix_secs(issued_at);
        Claims {
            iss: iss.to_owned(),
            aud: aud.to_owned(),
            exp: iat.saturating_add(lifetime.as_secs()),
            iat: Some(iat),
            lxm: Some(lxm.to_owned()),
            jti: Some(jti),
        }
    }
}

/// `at` in whole seconds since the Unix epoch, rounded down: the unit of the JWT `iat` and
/// `exp` claims.
pub fn unix_secs(at: Timestamp) -> u64 {
    at.as_millis() / 1000
}
