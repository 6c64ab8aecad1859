//! Load generator for the atmls delivery service (`docs/performance.md`).
//!
//! It starts the DS in this process on `127.0.0.1:0` over a SQLite file in a temporary
//! directory — or over a PostgreSQL database with one or more DS processes
//! ([`postgres`], `--database`, `--processes`), or targets a running `atmls serve` on
//! loopback — creates mailboxes with
//! service-auth tokens from a dev PLC directory, and runs bounded scenarios with real
//! signed requests and subscriptions:
//!
//! - `ingest`: concurrent senders of 1 KiB envelopes, one per request and batched;
//! - `fanout`: send→receive latency to many WebSocket subscribers of one mailbox;
//! - `catchup`: reading a large mailbox with `getEnvelopes` pages;
//! - `rss`: resident memory with many mailboxes and open subscriptions;
//! - baselines in the same run: a no-op hyper handler driven by the same client, and raw
//!   SQLite insert transactions with the DS store's pragmas, and with a database raw
//!   PostgreSQL insert transactions through the store's driver.
//!
//! Every scenario checks what it measured (every acknowledged envelope stored once, in
//! order; every subscriber receives every envelope in order) and fails otherwise.
//!
//! ```
//! use std::time::Duration;
//! use atmls_loadgen::stats::Latencies;
//!
//! let mut l = Latencies::default();
//! for ms in [1, 2, 3, 4, 100] {
//!     l.push(Duration::from_millis(ms));
//! }
//! let s = l.summary();
//! assert_eq!((s.p50_ms, s.p99_ms), (3.0, 100.0));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
mod error;
pub mod fdlimit;
pub mod postgres;
pub mod report;
mod run;
pub mod scenario;
pub mod stats;
pub mod target;

pub use error::LoadgenError;
pub use postgres::Database;
pub use report::{Figure, Report};
pub use run::{Plan, Scenario, run, to_json};
pub use target::Target;
