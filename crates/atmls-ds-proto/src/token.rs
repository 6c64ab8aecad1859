//! Mailbox-key request signing: the methods, the signing bytes, and the 120-byte token
//! with its text form (`docs/spec.md` §9.4).
//!
//! A request to a mailbox is authorised by a 120-byte token
//! `key (32) || timestamp_ms (u64 BE) || nonce (16) || signature (64)`, sent base64url
//! without padding in `Authorization: ChatMls-Mailbox <token>` (or as a subscription's
//! `auth` parameter). The signature is Ed25519 over [`signing_bytes`]. Checking a token
//! against a mailbox's registered keys and the replay cache is the delivery service's
//! business (`atmls-ds`), not the wire's.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::id::MailboxId;
use atmls_syntax::Timestamp;

/// The HTTP authorization scheme of mailbox-key requests.
pub const AUTH_SCHEME: &str = "ChatMls-Mailbox";

/// The domain-separation prefix of the signing bytes (followed by one zero byte).
pub const SIGNING_CONTEXT: &[u8] = b"chat.mls/ds/v1 request";

/// The methods authorised by a mailbox key; their NSID is part of what is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DsMethod {
    /// `chat.mls.ds.getMailbox`.
    GetMailbox,
    /// `chat.mls.ds.sendEnvelopes`.
    SendEnvelopes,
    /// `chat.mls.ds.getEnvelopes`.
    GetEnvelopes,
    /// `chat.mls.ds.subscribeEnvelopes`.
    SubscribeEnvelopes,
    /// `chat.mls.ds.listInbox`.
    ListInbox,
    /// `chat.mls.ds.deleteInboxItems`.
    DeleteInboxItems,
}

impl DsMethod {
    /// The method's NSID, e.g. `chat.mls.ds.sendEnvelopes`.
    pub const fn nsid(self) -> &'static str {
        match self {
            Self::GetMailbox => "chat.mls.ds.getMailbox",
            Self::SendEnvelopes => "chat.mls.ds.sendEnvelopes",
            Self::GetEnvelopes => "chat.mls.ds.getEnvelopes",
            Self::SubscribeEnvelopes => "chat.mls.ds.subscribeEnvelopes",
            Self::ListInbox => "chat.mls.ds.listInbox",
            Self::DeleteInboxItems => "chat.mls.ds.deleteInboxItems",
        }
    }
}

/// The bytes a mailbox-key signature covers:
///
/// ```text
/// "chat.mls/ds/v1 request" || 0x00 || u8 len(nsid) || nsid || mailbox id (32 bytes)
/// || key (32) || timestamp_ms (u64 BE) || nonce (16) || SHA-256(content)
/// ```
///
/// `content` is the exact request body of a procedure, the exact query string (after `?`)
/// of a query, or for a subscription the query string with its `auth` parameters removed
/// ([`subscription_content`]).
pub fn signing_bytes(
    method: DsMethod,
    mailbox: &MailboxId,
    key: &[u8; 32],
    timestamp: Timestamp,
    nonce: &[u8; 16],
    content: &[u8],
) -> Vec<u8> {
    let nsid = method.nsid().as_bytes();
    let mut out = Vec::with_capacity(SIGNING_CONTEXT.len() + 2 + nsid.len() + 32 * 3 + 24);
    out.extend_from_slice(SIGNING_CONTEXT);
    out.push(0);
    // NSIDs of this crate are far shorter than 256 bytes.
    out.push(u8::try_from(nsid.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(nsid);
    out.extend_from_slice(mailbox.as_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&timestamp.as_millis().to_be_bytes());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&Sha256::digest(content));
    out
}

/// The signed content of a subscription: its query string with every `auth` parameter
/// removed.
///
/// The query is split on `&`; every component that is exactly `auth` or starts with
/// `auth=` (compared byte for byte, before any percent-decoding) is dropped; the remaining
/// components are joined with `&` in their original order, unchanged.
pub fn subscription_content(query: &str) -> String {
    query
        .split('&')
        .filter(|part| *part != "auth" && !part.starts_with("auth="))
        .collect::<Vec<_>>()
        .join("&")
}

/// The token of an `Authorization` header value: the scheme `ChatMls-Mailbox`, matched
/// case-insensitively, followed by one or more spaces. `None` for any other scheme.
pub fn header_token(header: &str) -> Option<&str> {
    let (scheme, rest) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case(AUTH_SCHEME)
        .then(|| rest.trim_start_matches(' ').trim_end())
}

/// Why a token was refused on its own, before any mailbox state is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is not 160 characters of base64url encoding 120 bytes (`BadToken`).
    #[error("malformed mailbox token")]
    Malformed,
    /// The signature does not verify with the token's key (`BadSignature`).
    #[error("the mailbox signature does not verify")]
    BadSignature,
}

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
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TokenError> {
        let bytes: &[u8; TOKEN_LEN] = bytes.try_into().map_err(|_| TokenError::Malformed)?;
        let (key, rest) = bytes.split_at(32);
        let (ts, rest) = rest.split_at(8);
        let (nonce, signature) = rest.split_at(16);
        // The splits above have exactly these lengths.
        let conv = |_| TokenError::Malformed;
        Ok(Self {
            key: key.try_into().map_err(conv)?,
            timestamp: Timestamp::from_millis(u64::from_be_bytes(ts.try_into().map_err(conv)?)),
            nonce: nonce.try_into().map_err(conv)?,
            signature: signature.try_into().map_err(conv)?,
        })
    }

    /// Parses the text form: base64url without padding, exactly 160 characters.
    pub fn decode(text: &str) -> Result<Self, TokenError> {
        if text.len() != TOKEN_TEXT_LEN {
            return Err(TokenError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| TokenError::Malformed)?;
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
        format!("{AUTH_SCHEME} {}", self.encode())
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
    ) -> Result<(), TokenError> {
        let key = VerifyingKey::from_bytes(&self.key).map_err(|_| TokenError::BadSignature)?;
        let msg = signing_bytes(
            method,
            mailbox,
            &self.key,
            self.timestamp,
            &self.nonce,
            content,
        );
        key.verify_strict(&msg, &Signature::from_bytes(&self.signature))
            .map_err(|_| TokenError::BadSignature)
    }
}

impl std::fmt::Debug for RequestToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestToken")
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_content_drops_auth_only() {
        assert_eq!(
            subscription_content("mailbox=a&auth=x&cursor=1&auth=y&mailbox=b"),
            "mailbox=a&cursor=1&mailbox=b"
        );
        assert_eq!(subscription_content("auth=x"), "");
        assert_eq!(
            subscription_content("authx=1&auth&x=auth=2"),
            "authx=1&x=auth=2"
        );
    }

    #[test]
    fn signing_bytes_layout() {
        let id = MailboxId::from_bytes([1; 32]);
        let b = signing_bytes(
            DsMethod::SendEnvelopes,
            &id,
            &[2; 32],
            Timestamp::from_millis(0x0102_0304_0506_0708),
            &[3; 16],
            b"",
        );
        assert_eq!(&b[..23], b"chat.mls/ds/v1 request\0");
        assert_eq!(b[23], 25);
        assert_eq!(&b[24..49], b"chat.mls.ds.sendEnvelopes");
        assert_eq!(&b[49..81], &[1; 32]);
        assert_eq!(&b[81..113], &[2; 32]);
        assert_eq!(&b[113..121], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&b[121..137], &[3; 16]);
        // SHA-256 of the empty string.
        assert_eq!(&b[137..141], &[0xe3, 0xb0, 0xc4, 0x42]);
        assert_eq!(b.len(), 169);
    }
}

#[cfg(test)]
mod vector {
    use super::*;

    /// The test vector printed in `docs/spec.md` (§9.4).
    #[test]
    fn request_token_vector() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let mailbox = MailboxId::from_bytes([1; 32]);
        let content = br#"{"mailbox":"aeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaq","envelopes":[{"kind":"message","payload":{"$bytes":"aGk"}}]}"#;
        let ts = Timestamp::from_millis(1_800_000_000_000);
        let t = RequestToken::sign(
            &key,
            DsMethod::SendEnvelopes,
            &mailbox,
            ts,
            [2; 16],
            content,
        );
        let msg = signing_bytes(
            DsMethod::SendEnvelopes,
            &mailbox,
            t.key(),
            ts,
            &[2; 16],
            content,
        );
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(
            mailbox.to_string(),
            "aeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaq"
        );
        assert_eq!(
            hex(t.key()),
            "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c"
        );
        assert_eq!(
            hex(&msg),
            concat!(
                "636861742e6d6c732f64732f763120726571756573740019636861742e6d6c732e64732e73656e64",
                "456e76656c6f70657301010101010101010101010101010101010101010101010101010101010101",
                "01ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c000001a3185c50",
                "0002020202020202020202020202020202bedd300bf22280a2db46c6008e75bd6aa51d46a89666be",
                "f68d48d1f52235e52a"
            )
        );
        assert_eq!(
            t.encode(),
            concat!(
                "6kpsY-KcUgq-9VB7Ey7F-ZVHdq6-vnuSQh7qaRRG0iwAAAGjGFxQAAICAgICAgICAgICAgICAgJcUc9Ee",
                "YlYNaWj-48M-O-N_vRzju54WG86Q8-9r-1YMkHB5h4lhTxcPrbnCfOOoJsruDo_Zt-Ey__SUjYdqwcA"
            )
        );
        let parsed = RequestToken::decode(&t.encode()).expect("decodes");
        parsed
            .verify(DsMethod::SendEnvelopes, &mailbox, content)
            .expect("verifies");
    }
}
