//! Mailbox request tokens (`Authorization: ChatMls-Mailbox <token>`, a subscription's
//! `auth` parameter) never panic in decoding or in the signature pre-check, and a token
//! that decodes re-encodes to the same text.
#![no_main]

use atmls_ds::MailboxId;
use atmls_ds::auth::{DsMethod, RequestAuth, RequestToken, subscription_content};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = RequestToken::from_bytes(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(token) = RequestToken::decode(text) {
        assert_eq!(token.encode(), text);
        assert_eq!(
            RequestToken::from_bytes(&token.to_bytes()).ok(),
            Some(token)
        );
    }
    let mailbox = MailboxId::from_bytes([7; 32]);
    // The header as sent, the body as the content.
    let _ = RequestAuth::from_header(Some(text), data)
        .check_signature(DsMethod::SendEnvelopes, &mailbox);
    let _ = RequestAuth::from_token(Some(text), b"")
        .check_signature(DsMethod::SubscribeEnvelopes, &mailbox);
    let _ = subscription_content(text);
});
