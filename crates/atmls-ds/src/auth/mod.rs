//! Mailbox-key request signing: tokens, signing bytes, and the checks the core applies.
//!
//! A request to a mailbox is authorised by a 120-byte token
//! `key (32) || timestamp_ms (u64 BE) || nonce (16) || signature (64)`, sent base64url
//! without padding in `Authorization: ChatMls-Mailbox <token>` (or as a subscription's
//! `auth` parameter). The signature is Ed25519 over [`signing_bytes`].

mod checked;
mod key;
mod replay;
mod source;
mod token;

pub use checked::{Authorization, PreChecked};
pub use key::{InvalidKey, MailboxKey};
pub use replay::ReplayShare;
pub(crate) use replay::{Principals, ReplayCache, ReplayLimits, ReplayVerdict};
pub use source::RequestSource;
pub use token::{RequestToken, TOKEN_LEN, TOKEN_TEXT_LEN};

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

/// The authorisation a request came with: its token text (if any) and the content it
/// signs (see [`signing_bytes`]).
#[derive(Debug, Clone, Copy)]
pub struct RequestAuth<'a> {
    token: Option<&'a str>,
    content: &'a [u8],
}

impl<'a> RequestAuth<'a> {
    /// From the value of an `Authorization` header (`None` if the request had none).
    ///
    /// The scheme `ChatMls-Mailbox` is matched case-insensitively and followed by one or
    /// more spaces; any other scheme counts as no mailbox authorisation (`AuthRequired`).
    pub fn from_header(header: Option<&'a str>, content: &'a [u8]) -> Self {
        let token = header.and_then(|h| {
            let (scheme, rest) = h.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case(AUTH_SCHEME)
                .then(|| rest.trim_start_matches(' ').trim_end())
        });
        Self { token, content }
    }

    /// From a bare token, e.g. one `auth` parameter of a subscription.
    pub fn from_token(token: Option<&'a str>, content: &'a [u8]) -> Self {
        Self { token, content }
    }

    pub(crate) fn token(&self) -> Option<&'a str> {
        self.token
    }

    pub(crate) fn content(&self) -> &'a [u8] {
        self.content
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
    fn header_parsing() {
        let a = RequestAuth::from_header(Some("chatmls-mailbox  abc"), b"");
        assert_eq!(a.token(), Some("abc"));
        assert_eq!(
            RequestAuth::from_header(Some("Bearer abc"), b"").token(),
            None
        );
        assert_eq!(
            RequestAuth::from_header(Some("ChatMls-Mailbox"), b"").token(),
            None
        );
        assert_eq!(RequestAuth::from_header(None, b"").token(), None);
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

    /// The test vector printed in `docs/spec-ds-core.md`.
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
