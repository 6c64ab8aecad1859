//! Application content (`chat.mls.content`, docs/spec.md §5) and payload padding.
//!
//! An application message's plaintext is one `chat.mls.content` object in DAG-CBOR with
//! `"$type": "chat.mls.content"` at its top level. What goes to the DS is the
//! TLS-encoded `MLSMessage` followed by zero bytes up to the size bucket
//! ([`padded_len`]); readers parse one `MLSMessage` and require the rest to be zeros.

use atmls_lexicon::chat::mls::content as lex;
use atrium_api::types::Union;
use atrium_api::types::string::Datetime;
use ipld_core::ipld::Ipld;

use crate::error::ContentError;

pub use lex::{Main as Content, MainBodyRefs as Body, MainData as ContentData};

/// The `$type` of content objects.
pub const CONTENT_TYPE: &str = "chat.mls.content";

/// A fresh message id: 16 random bytes as lowercase base32 without padding (26 chars).
pub fn new_message_id() -> String {
    let bytes: [u8; 16] = rand::random();
    base32(&bytes)
}

pub(crate) fn base32(bytes: &[u8]) -> String {
    let mut spec = data_encoding::Specification::new();
    spec.symbols.push_str("abcdefghijklmnopqrstuvwxyz234567");
    spec.encoding().map(|e| e.encode(bytes)).unwrap_or_default()
}

/// A content object with a fresh id, sent now.
pub fn content(body: Body, fallback_text: Option<String>) -> Content {
    ContentData {
        body: Union::Refs(body),
        fallback_text,
        id: new_message_id(),
        sent_at: Datetime::now(),
    }
    .into()
}

/// A `#text` body.
pub fn text(text: impl Into<String>) -> Body {
    Body::Text(Box::new(
        lex::TextData {
            langs: None,
            text: text.into(),
        }
        .into(),
    ))
}

/// A `#reply` body.
pub fn reply(parent: impl Into<String>, text: impl Into<String>) -> Body {
    Body::Reply(Box::new(
        lex::ReplyData {
            langs: None,
            parent: parent.into(),
            text: text.into(),
        }
        .into(),
    ))
}

/// A `#reaction` body.
pub fn reaction(target: impl Into<String>, value: impl Into<String>) -> Body {
    Body::Reaction(Box::new(
        lex::ReactionData {
            remove: None,
            target: target.into(),
            value: value.into(),
        }
        .into(),
    ))
}

/// A `#readReceipt` body.
pub fn read_receipt(messages: Vec<String>) -> Body {
    Body::ReadReceipt(Box::new(lex::ReadReceiptData { messages }.into()))
}

/// An `#edit` body.
pub fn edit(target: impl Into<String>, text: impl Into<String>) -> Body {
    Body::Edit(Box::new(
        lex::EditData {
            target: target.into(),
            text: text.into(),
        }
        .into(),
    ))
}

/// A `#delete` body.
pub fn delete(target: impl Into<String>) -> Body {
    Body::Delete(Box::new(
        lex::DeleteData {
            target: target.into(),
        }
        .into(),
    ))
}

/// DAG-CBOR of `content` with `"$type": "chat.mls.content"`.
pub fn encode(content: &Content) -> Result<Vec<u8>, ContentError> {
    let value =
        ipld_core::serde::to_ipld(content).map_err(|e| ContentError::Encode(e.to_string()))?;
    let Ipld::Map(mut map) = value else {
        return Err(ContentError::Encode("content is not an object".into()));
    };
    map.insert("$type".into(), Ipld::String(CONTENT_TYPE.into()));
    atmls_repo::cbor::encode(&Ipld::Map(map)).map_err(|e| ContentError::Encode(e.to_string()))
}

/// Parses untrusted plaintext: canonical DAG-CBOR, `$type`, the lexicon, then the type.
pub fn decode(bytes: &[u8]) -> Result<Content, ContentError> {
    let value =
        atmls_repo::cbor::decode_ipld(bytes).map_err(|e| ContentError::Decode(e.to_string()))?;
    let Ipld::Map(map) = value else {
        return Err(ContentError::Decode("not an object".into()));
    };
    match map.get("$type") {
        Some(Ipld::String(t)) if t == CONTENT_TYPE => {}
        _ => return Err(ContentError::Decode("$type is not chat.mls.content".into())),
    }
    let mut json = atmls_repo::json::from_ipld(&Ipld::Map(map))
        .map_err(|e| ContentError::Decode(e.to_string()))?;
    crate::lexicons::validate_object(CONTENT_TYPE, &json).map_err(ContentError::Lexicon)?;
    // Through the JSON form: links and bytes survive serde's buffering of the open union.
    if let Some(object) = json.as_object_mut() {
        object.remove("$type");
    }
    serde_json::from_value(json).map_err(|e| ContentError::Decode(e.to_string()))
}

/// The bucket an MLSMessage of `len` bytes is padded to: at least 256 bytes, the next
/// power of two up to 64 KiB, then the next multiple of 64 KiB — never more than `max`
/// (the DS's `maxEnvelopeBytes`) unless `len` itself is.
pub fn padded_len(len: usize, max: usize) -> usize {
    let bucket = if len <= 256 {
        256
    } else if len <= 1 << 16 {
        len.next_power_of_two()
    } else {
        len.div_ceil(1 << 16) * (1 << 16)
    };
    bucket.min(max).max(len)
}

/// Pads an encoded MLSMessage with zeros to its bucket.
pub fn pad(mut message: Vec<u8>, max: usize) -> Vec<u8> {
    let n = padded_len(message.len(), max);
    message.resize(n, 0);
    message
}

/// Why a padded payload (§11.5) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnpadError {
    /// The payload does not start with a TLS-encoded `MLSMessage`.
    #[error("not an MLSMessage: {0}")]
    NotMlsMessage(String),
    /// A byte after the `MLSMessage` is not zero.
    #[error("non-zero padding")]
    NonZeroPadding,
}

/// Splits a padded payload (peer bytes from a mailbox) into its `MLSMessage`; the
/// padding must be zeros.
pub fn unpad(payload: &[u8]) -> Result<openmls::prelude::MlsMessageIn, UnpadError> {
    use openmls::prelude::tls_codec::Deserialize as _;
    let mut rest = payload;
    let message = openmls::prelude::MlsMessageIn::tls_deserialize(&mut rest)
        .map_err(|e| UnpadError::NotMlsMessage(e.to_string()))?;
    if rest.iter().any(|b| *b != 0) {
        return Err(UnpadError::NonZeroPadding);
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        assert_eq!(padded_len(1, 1 << 20), 256);
        assert_eq!(padded_len(256, 1 << 20), 256);
        assert_eq!(padded_len(257, 1 << 20), 512);
        assert_eq!(padded_len(40_000, 1 << 20), 65_536);
        assert_eq!(padded_len(65_537, 1 << 20), 131_072);
        assert_eq!(padded_len(200_000, 1 << 20), 262_144);
        assert_eq!(padded_len(900_000, 1 << 20), 917_504);
        assert_eq!(padded_len(1_040_000, 1 << 20), 1 << 20);
        assert_eq!(padded_len(990_000, 999_000), 999_000);
        assert_eq!(padded_len(1_000_000, 999_000), 1_000_000);
        assert_eq!(padded_len(2_000_000, 1 << 20), 2_000_000);
    }

    #[test]
    fn content_round_trip() {
        for body in [
            text("hi"),
            reply("a7kq2mxv4zt3nw5rhb6cjd2pfe", "yes"),
            reaction("a7kq2mxv4zt3nw5rhb6cjd2pfe", "👍🏽"),
            read_receipt(vec!["a7kq2mxv4zt3nw5rhb6cjd2pfe".into()]),
            edit("a7kq2mxv4zt3nw5rhb6cjd2pfe", "fixed"),
            delete("a7kq2mxv4zt3nw5rhb6cjd2pfe"),
        ] {
            let c = content(body, None);
            let bytes = encode(&c).unwrap();
            assert_eq!(decode(&bytes).unwrap(), c);
        }
    }

    #[test]
    fn refuses_bad_content() {
        let c = content(text("hi"), None);
        let bytes = encode(&c).unwrap();
        assert!(decode(&bytes[1..]).is_err());
        // Wrong $type.
        let mut map = match atmls_repo::cbor::decode_ipld(&bytes).unwrap() {
            Ipld::Map(m) => m,
            _ => unreachable!(),
        };
        map.insert("$type".into(), Ipld::String("x.y.z".into()));
        let other = atmls_repo::cbor::encode(&Ipld::Map(map.clone())).unwrap();
        assert!(matches!(decode(&other), Err(ContentError::Decode(_))));
        // Lexicon violation: empty text.
        map.insert("$type".into(), Ipld::String(CONTENT_TYPE.into()));
        map.insert("id".into(), Ipld::String("short".into()));
        let bad = atmls_repo::cbor::encode(&Ipld::Map(map)).unwrap();
        assert!(matches!(decode(&bad), Err(ContentError::Lexicon(_))));
    }

    #[test]
    fn unknown_body_type_keeps_fallback() {
        let json = serde_json::json!({
            "$type": "chat.mls.content",
            "id": "a7kq2mxv4zt3nw5rhb6cjd2pfe",
            "sentAt": "2026-11-24T12:00:00.000Z",
            "body": { "$type": "com.example.poll", "question": "tea or coffee?" },
            "fallbackText": "A poll: tea or coffee?"
        });
        let ipld = atmls_repo::json::to_ipld(&json).unwrap();
        let bytes = atmls_repo::cbor::encode(&ipld).unwrap();
        let c = decode(&bytes).unwrap();
        assert!(matches!(c.body, Union::Unknown(_)));
        assert_eq!(c.fallback_text.as_deref(), Some("A poll: tea or coffee?"));
    }
}

#[cfg(test)]
mod attachment_tests {
    #[test]
    fn attachment_content_round_trip() {
        let sealed = crate::attachment::seal(b"x").unwrap();
        let did: atmls_identity::Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap();
        let body = crate::attachment::body(
            &sealed,
            1,
            &did,
            atmls_repo::cid::raw(b"x"),
            "text/plain",
            None,
        )
        .unwrap();
        let c = super::content(body, Some("file".into()));
        let bytes = super::encode(&c).unwrap();
        assert_eq!(super::decode(&bytes).unwrap(), c);
    }
}
