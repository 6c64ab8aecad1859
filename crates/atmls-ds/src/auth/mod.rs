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

pub use atmls_ds_proto::token::{RequestToken, TOKEN_LEN, TOKEN_TEXT_LEN};
pub use checked::{Authorization, PreChecked};
pub use key::{InvalidKey, MailboxKey};
pub use replay::ReplayShare;
pub(crate) use replay::{Principals, ReplayCache, ReplayLimits, ReplayVerdict};
pub use source::RequestSource;

pub use atmls_ds_proto::token::{
    AUTH_SCHEME, DsMethod, SIGNING_CONTEXT, TokenError, header_token, signing_bytes,
    subscription_content,
};

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
        let token = header.and_then(header_token);
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
}
