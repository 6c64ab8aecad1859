//! The core of the embedded PDS-compatible host: accounts and sessions, repos on
//! [`atmls_repo`] in one SQLite block store, blobs, lexicon validation of records,
//! service-auth minting and `atproto-proxy` decisions. No HTTP here: `atmls-host-xrpc`
//! maps XRPC methods onto [`Host`]; the core takes the time as an argument.
//!
//! - Accounts get a did:plc registered in the (development) PLC
//!   [`Directory`](atmls_identity::plc::directory::Directory), with a fresh ES256K repo
//!   signing key and an empty signed repo. Passwords are hashed with argon2id.
//! - Sessions are HS256 JWTs under a server secret, as the official PDS makes them:
//!   short-lived access tokens (`typ: at+jwt`, `scope: com.atproto.access`) and long-lived
//!   refresh tokens (`typ: refresh+jwt`, `scope: com.atproto.refresh`), rotated on every
//!   refresh. Live sessions are kept in SQLite: a rotated refresh token, or any token of a
//!   deleted session, is refused.
//! - Records of collections with a known lexicon are validated (`validationStatus:
//!   "valid"`); others are stored as-is (`"unknown"`), the spec's optimistic mode.
//!
//! ```
//! use std::sync::Arc;
//! use atmls_identity::plc::directory::Directory;
//! use atmls_lexicon::validate::Catalog;
//! use atmls_host::{CreateAccountInput, ListParams, Host, HostConfig, Timestamp};
//! use serde_json::json;
//!
//! let directory = Arc::new(Directory::in_memory());
//! let pds = Host::in_memory(
//!     HostConfig::new("http://127.0.0.1:2583"),
//!     directory,
//!     Arc::new(Catalog::new()),
//! )?;
//! let now = Timestamp::from_millis(1_700_000_000_000);
//! let session = pds.create_account(&CreateAccountInput::new("alice.test", "hunter2"), now)?;
//! let caller = pds.authenticate(&session.access_jwt, now)?;
//!
//! let input = serde_json::from_value(json!({
//!     "repo": session.did, "collection": "com.example.note",
//!     "record": { "text": "hello" },
//! }))?;
//! let written = pds.create_record(&caller, input)?;
//! assert_eq!(written.validation_status.as_deref(), Some("unknown"));
//!
//! let page = pds.list_records("alice.test", "com.example.note", &ListParams::new())?;
//! assert_eq!(page.records[0].value["text"], "hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod accounts;
mod blobs;

mod config;
mod db;
mod error;
mod host;
pub mod jwt;
mod password;
mod records;
mod rotate;
mod service;
mod sync;
pub mod throttle;

pub use accounts::{Account, Caller, CreateAccountInput, Session, SessionInfo};
pub use atmls_syntax::{Clock, ManualClock, SystemClock, Timestamp};
pub use blobs::Blob;
pub use config::HostConfig;
pub use error::HostError;
pub use host::Host;
pub use records::{
    ApplyWritesInput, CommitMeta, CreateRecordInput, DeleteRecordInput, ListParams, MAX_LIST_LIMIT,
    PutRecordInput, RecordPage, RecordView, RecordWritten, WriteOp,
};
pub use service::{LocalResolver, ProxyTarget};
pub use throttle::{Rate, Throttle, ThrottleConfig};

/// The file names a data directory holds: the accounts database and the repo block store.
pub const DATA_FILES: [&str; 2] = [host::ACCOUNTS_FILE, host::REPOS_FILE];
