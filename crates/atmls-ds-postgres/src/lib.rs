//! The delivery service's store on PostgreSQL: several DS processes over one database.
//!
//! [`PgStore`] implements the DS storage contract ([`atmls_ds::Store`]) and passes the
//! same suite as the memory and SQLite stores (`atmls_testkit::ds_store`). What one
//! process of the service decided in memory before is decided by the database here, so
//! that any number of processes can share it:
//!
//! - **Ordering.** An append locks the rows of the mailboxes it touches (`SELECT … FOR
//!   UPDATE`, in id order, so two processes never deadlock on each other) and checks its
//!   batches against the state read under that lock: the head compare-and-swap
//!   ([`atmls_ds::store::check_append`]) is decided against what the other process
//!   committed. The loser gets [`StoreError::HeadMoved`](atmls_ds::StoreError::HeadMoved)
//!   and re-reads; the `UPDATE … WHERE head = expected` and the primary key
//!   `(mailbox, seq)` make a fork or a gap impossible even so. The DS writer takes those
//!   row locks already before it decides a group of requests
//!   ([`Store::lock_mailboxes`](atmls_ds::Store::lock_mailboxes)) and writes the group in
//!   the same transaction: processes filling one mailbox then wait for each other
//!   instead of losing the compare-and-swap to each other again and again.
//! - **Quotas.** The per-account mailbox count moves with a conditional upsert in the
//!   creating transaction; concurrent creations for one account queue on its row.
//! - **Expiry.** One process at a time (an advisory lock); it locks the mailboxes first,
//!   like an append, then deletes their old envelopes.
//! - **Failures.** Every call is one transaction. A failure that may go away (connection
//!   lost, server restarting, pool exhausted, serialization or deadlock check) is
//!   [`StoreError::Database`](atmls_ds::StoreError::Database) with `transient: true`
//!   ([`StoreError::is_transient`](atmls_ds::StoreError::is_transient)).
//!
//! # Schema (version [`SCHEMA_VERSION`])
//!
//! Applied by [versioned migrations](crate::migrate) when a store connects; the version is
//! recorded in `atmls_ds_migrations`.
//!
//! | table | holds |
//! | --- | --- |
//! | `mailboxes` | id (32 random bytes), kind (0 group, 1 inbox), head, epoch, current key, previous key and until when, payload bytes held. No account, no creation time. |
//! | `envelopes` | (mailbox, seq) primary key, kind (0 message, 1 commit, 2 welcome), epoch of a commit, payload, received-at (ms). |
//! | `epoch_keys` | per group mailbox: the key of each ended epoch, the epoch and the seq of the commit that ended it. |
//! | `account_quota` | account (DID) → number of mailboxes created. No mailbox id, no time. |
//! | `replay_saved`, `clean_stop` | the replay cache saved at a clean stop, until the next start takes it. |
//! | `replay_nonces`, `replay_shares` | the shared mailbox-token replay cache: (key, nonce) → mailbox, expiry; per key and per mailbox, how many rows it holds ([`shared`]). |
//! | `service_auth_jti`, `rate_windows` | service-auth token ids seen; fixed-window counters ([`shared`]). |
//!
//! Integers are `BIGINT` (values above `i64::MAX` are refused with
//! [`StoreError::OutOfRange`](atmls_ds::StoreError::OutOfRange)), times are milliseconds
//! since the Unix epoch. Unlike SQLite's `WITHOUT ROWID` tables, a PostgreSQL heap keeps
//! rows roughly in insertion order, and row versions carry transaction ids: an operator
//! who can read the raw tables can tell creation order of mailboxes, though still not
//! who created them.
//!
//! ```no_run
//! use atmls_ds::Store as _;
//! use atmls_ds_postgres::{PgConfig, PgStore};
//!
//! let config = PgConfig::new("postgres://ds:secret@127.0.0.1/atmls")?;
//! let store = PgStore::connect(&config)?;
//! assert_eq!(store.account_mailboxes("did:plc:nobody")?, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod codec;
mod config;
pub mod copy;
mod error;
pub mod migrate;
pub mod notify;
pub mod shared;
mod store;

pub use config::{DEFAULT_WRITER_LANES, InvalidSchemaName, InvalidUrl, PgConfig, SchemaName};
pub use copy::{CopyError, CopyReport, NonEmptyTarget, copy_from_sqlite};
pub use migrate::SCHEMA_VERSION;
pub use notify::{Appended, Listener, Notices};
pub use shared::{
    JtiVerdict, NonceClaim, NonceShares, NonceVerdict, RateLimit, RateScope, RateVerdict, Swept,
};
pub use store::{PgStore, PoolStatus};
