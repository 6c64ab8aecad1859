//! The `chat.mls` delivery-service wire, shared by every client and server: mailbox ids,
//! envelope kinds, request tokens and their signing bytes, the method list, the wire
//! envelope, send receipts, pages, mailbox info, limits, the error names with their HTTP
//! statuses, and both codecs built on the generated lexicon types
//! (`atmls_lexicon::chat::mls::*`). No I/O, no storage, no HTTP.
//!
//! The protocol is written down in `docs/spec.md` (§4 shared definitions, §6 methods, §7
//! error names, §9.4 request signing, §10 the DS over HTTP).
//!
//! ```
//! use atmls_ds_proto::codec::{client, server};
//! use atmls_ds_proto::{Envelope, EnvelopeKind, EnvelopePage, Timestamp};
//!
//! // A server answers getEnvelopes through the generated output type ...
//! let page = EnvelopePage {
//!     envelopes: vec![Envelope {
//!         seq: 1,
//!         kind: EnvelopeKind::Message,
//!         epoch: None,
//!         payload: b"hi".to_vec(),
//!         received_at: Timestamp::from_millis(1_800_000_000_000),
//!     }],
//!     cursor: 1,
//!     head_seq: 1,
//!     epoch: Some(0),
//! };
//! let body = serde_json::to_vec(&server::get_envelopes_output(&page))?;
//! assert_eq!(
//!     std::str::from_utf8(&body)?,
//!     r#"{"envelopes":[{"seq":1,"kind":"message","payload":{"$bytes":"aGk"},"receivedAt":"2027-01-15T08:00:00.000Z"}],"cursor":1,"headSeq":1,"epoch":0}"#
//! );
//! // ... and a client reads it back, every field checked.
//! assert_eq!(client::get_envelopes_output(&body)?, page);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
mod error;
mod id;
mod limits;
pub mod token;
mod values;

pub use atmls_syntax::Timestamp;
pub use error::{DecodeError, EpochConflict, ErrorBody, ErrorName, status_of_name};
pub use id::{
    EnvelopeKind, MAILBOX_ID_LEN, MAILBOX_ID_TEXT_LEN, MailboxId, MailboxKind, ParseMailboxIdError,
    UnknownKind,
};
pub use limits::{
    LEXICON_MAX_DELETE, LEXICON_MAX_PAGE, LEXICON_MAX_PAYLOAD, LEXICON_MAX_SUBSCRIPTION_MAILBOXES,
    MAX_EPOCH, MAX_SEQ,
};
pub use token::{DsMethod, RequestToken, TokenError};
pub use values::{
    CreateMailbox, DidResult, DidStatus, Envelope, EnvelopePage, InboxPage, Limits, MailboxInfo,
    OutgoingEnvelope, ProvenRecord, SendReceipt, ServerDescription,
};
