//! Decoding a compact JWT without verifying it.

use atmls_crypto::Algorithm;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::{ServiceAuthError, TokenPart};

/// The JOSE header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// `"JWT"` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// `"ES256K"` or `"ES256"`.
    pub alg: String,
    /// The key fragment (`#atproto` or `did#atproto`), when not the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
}

/// The claims of a service-auth token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The account DID (optionally `did#service`).
    pub iss: String,
    /// The service DID, with or without its `#fragment`.
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issue time, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// The XRPC method NSID the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lxm: Option<String>,
    /// A unique nonce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// A token split and decoded, its signature not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedToken {
    /// The header.
    pub header: Header,
    /// The algorithm the header names (only ES256K / ES256 parse).
    pub alg: Algorithm,
    /// The claims.
    pub claims: Claims,
    /// The 64-byte signature.
    pub signature: [u8; 64],
    /// `header.payload`, the signed bytes.
    pub signing_input: String,
}

impl UnverifiedToken {
    /// Splits and decodes `token`, bounding its size first.
    pub fn parse(token: &str, max_len: usize) -> Result<Self, ServiceAuthError> {
        if token.len() > max_len {
            return Err(ServiceAuthError::TooLarge {
                len: token.len(),
                max: max_len,
            });
        }
        let segments: Vec<&str> = token.split('.').collect();
        let [header_b64, payload_b64, sig_b64] = segments[..] else {
            return Err(ServiceAuthError::SegmentCount(segments.len()));
        };
        let header_bytes = decode(header_b64, TokenPart::Header)?;
        let header: Header = serde_json::from_slice(&header_bytes)
            .map_err(|e| ServiceAuthError::MalformedHeader(e.to_string()))?;
        let alg = Algorithm::from_jwt_name(&header.alg)
            .map_err(|_| ServiceAuthError::UnsupportedAlgorithm(header.alg.clone()))?;
        if let Some(typ) = &header.typ
            && typ != "JWT"
        {
            return Err(ServiceAuthError::WrongType(typ.clone()));
        }
        let payload = decode(payload_b64, TokenPart::Payload)?;
        let claims: Claims = serde_json::from_slice(&payload)
            .map_err(|e| ServiceAuthError::MalformedPayload(e.to_string()))?;
        let sig = decode(sig_b64, TokenPart::Signature)?;
        let signature: [u8; 64] = sig
            .as_slice()
            .try_into()
            .map_err(|_| ServiceAuthError::SignatureLength(sig.len()))?;
        Ok(UnverifiedToken {
            header,
            alg,
            claims,
            signature,
            signing_input: format!("{header_b64}.{payload_b64}"),
        })
    }
}

fn decode(segment: &str, part: TokenPart) -> Result<Vec<u8>, ServiceAuthError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| ServiceAuthError::Base64(part))
}

pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}
