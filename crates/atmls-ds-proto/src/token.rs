//! The 120-byte request token and its text form.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use super::{DsMethod, signing_bytes};
use crate::error::AuthError;
use crate::id::MailboxId;
use atmls_syntax::Timestamp;

/// Length of a token in bytes.
pub const TOKEN_LEN: usize = 120;

/// Length of a token's text form (base64url without padding).
pub const TOKEN_TEXT_LEN: usize = 160;

/// A signed mailbox-key request token:
/// `key (32) || timestamp_ms (u64 BE) || nonce (16) || signature (64)`.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestToken {
    key: [u8; 32],
    timestamp: Timestamp,
    nonce: [u8; 16],
    signature: [u8; 64],
}

impl RequestToken {
    /// Signs a request for `method` on `mailbox` with `key`, at `timestamp` with a fresh
    /// random `nonce`, over `content` (see [`signing_bytes`]).
    pub fn sign(
        key: &SigningKey,
        method: DsMethod,
        mailbox: &MailboxId,
        timestamp: Timestamp,
        nonce: [u8; 16],
        content: &[u8],
    ) -> Self {
        let public = key.verifying_key().to_bytes();
        let msg = signing_bytes(method, mailbox, &public, timestamp, &nonce, content);
        Self {
            key: public,
            timestamp,
            nonce,
            signature: key.sign(&msg).to_bytes(),
        }
    }

    /// Parses the 120 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AuthError> {
        let bytes: &[u8; TOKEN_LEN] = bytes.try_into().map_err(|_| AuthError::BadToken)?;
        let (key, rest) = bytes.split_at(32);
        let (ts, rest) = rest.split_at(8);
        let (nonce, signature) = rest.split_at(16);
        // The splits above have exactly these lengths.
        let conv = |_| AuthError::BadToken;
        Ok(Self {
            key: key.try_into().map_err(conv)?,
            timestamp: Timestamp::from_millis(u64::from_be_bytes(ts.try_into().map_err(conv)?)),
            nonce: nonce.try_into().map_err(conv)?,
            signature: signature.try_into().map_err(conv)?,
        })
    }

    /// Parses the text form: base64url without padding, exactly 160 characters.
    pub fn decode(text: &str) -> Result<Self, AuthError> {
        if text.len() != TOKEN_TEXT_LEN {
            return Err(AuthError::BadToken);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| AuthError::BadToken)?;
        Self::from_bytes(&bytes)
    }

    /// The 120 raw bytes.
    pub fn to_bytes(&self) -> [u8; TOKEN_LEN] {
        let mut out = [0u8; TOKEN_LEN];
        out[..32].copy_from_slice(&self.key);
        out[32..40].copy_from_slice(&self.timestamp.as_millis().to_be_bytes());
        out[40..56].copy_from_slice(&self.nonce);
        out[56..].copy_from_slice(&self.signature);
        out
    }

    /// The text form: base64url without padding (160 characters).
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.to_bytes())
    }

    /// The `Authorization` header value: `ChatMls-Mailbox <token>`.
    pub fn authorization_header(&self) -> String {
        format!("{} {}", super::AUTH_SCHEME, self.encode())
    }

    /// The public key the token claims to be signed with.
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The signed timestamp.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The signed nonce.
    pub fn nonce(&self) -> &[u8; 16] {
        &self.nonce
    }

    /// Checks the signature over the signing bytes (strict Ed25519: canonical `S`, no
    /// small-order key or `R`).
    pub fn verify(
        &self,
        method: DsMethod,
        mailbox: &MailboxId,
        content: &[u8],
    ) -> Result<(), AuthError> {
        let key = VerifyingKey::from_bytes(&self.key).map_err(|_| AuthError::BadSignature)?;
        let msg = signing_bytes(
            method,
            mailbox,
            &self.key,
            self.timestamp,
            &self.nonce,
            content,
        );
        key.verify_strict(&msg, &Signature::from_bytes(&self.signature))
            .map_err(|_| AuthError::BadSignature)
    }
}

impl std::fmt::Debug for RequestToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestToken")
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}
