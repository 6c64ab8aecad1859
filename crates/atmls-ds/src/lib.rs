//! Delivery-service core for `chat.mls`: group and inbox mailboxes, gap-free ordering,
//! commit compare-and-swap on the epoch, mailbox-key capability checks, retention, quotas
//! and limits — and its storage. There is no I/O in here: requests, bytes and the time
//! come in as arguments; the shell (`atmls-ds-xrpc`) only parses HTTP and calls
//! [`DeliveryService`]. The wire (ids, tokens, envelopes, error names, codecs) is the
//! crate `atmls-ds-proto`, re-exported here; the rules are in `docs/spec.md` §9.
//!
//! ```
//! use atmls_ds::auth::{DsMethod, RequestAuth, RequestToken};
//! use atmls_ds::{DeliveryService, DsConfig, MailboxKind, MemoryStore, OutgoingEnvelope, Timestamp};
//! use ed25519_dalek::SigningKey;
//! use rand::SeedableRng as _;
//!
//! let rng = rand::rngs::StdRng::seed_from_u64(1);
//! let mut ds = DeliveryService::new(MemoryStore::new(), rng, DsConfig::default());
//! let now = Timestamp::from_millis(1_800_000_000_000);
//!
//! // The epoch-0 mailbox key every member derives from MLS.
//! let key0 = SigningKey::from_bytes(&[7; 32]);
//! let info = ds.create_mailbox("did:plc:alice", MailboxKind::Group, key0.verifying_key().as_bytes(), 0)?;
//!
//! // A signed request: the token covers method, mailbox, time, nonce and the body.
//! let body = br#"{"mailbox":"...","envelopes":[...]}"#;
//! let token = RequestToken::sign(&key0, DsMethod::SendEnvelopes, &info.mailbox, now, [1; 16], body);
//! let header = token.authorization_header();
//! let auth = RequestAuth::from_header(Some(&header), body);
//! let receipt = ds.send_envelopes(&info.mailbox, &auth, vec![OutgoingEnvelope::message(b"hi".to_vec())], now)?;
//! assert_eq!((receipt.first_seq, receipt.last_seq, receipt.epoch), (1, 1, 0));
//!
//! // The same token again is a replay.
//! let again = ds.send_envelopes(&info.mailbox, &auth, vec![OutgoingEnvelope::message(b"hi".to_vec())], now);
//! assert_eq!(again.unwrap_err().name(), "ReplayedRequest");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
mod config;
mod error;
mod service;
pub mod store;

/// The wire crate this core speaks: ids, tokens, envelopes, error names, codecs.
pub use atmls_ds_proto as proto;
pub use atmls_ds_proto::{
    EnvelopeKind, MAILBOX_ID_LEN, MAILBOX_ID_TEXT_LEN, MailboxId, MailboxKind, ParseMailboxIdError,
    UnknownKind,
};
pub use atmls_ds_proto::{EnvelopePage, InboxPage, MailboxInfo, OutgoingEnvelope, SendReceipt};
pub use atmls_syntax::Timestamp;
pub use config::{
    DsConfig, LEXICON_MAX_DELETE, LEXICON_MAX_PAGE, LEXICON_MAX_PAYLOAD, MAX_EPOCH,
    MAX_MESSAGE_LIFETIME_MARGIN, MAX_SEQ, MESSAGE_LIFETIME_SECONDS,
};
pub use error::{
    AuthError, CreateMailboxError, EnvelopeRule, InboxError, MailboxFull, ReadError,
    SendEnvelopesError, SendWelcomeError,
};
pub use service::{DeliveryService, Expired, Restart, Subscription};
pub use store::{Envelope, MemoryStore, SqliteStore, Store, StoreError};
